"""The ``lc2backup`` command line: apply BackupRequest manifests, list, inspect and watch backups through the
projection API, and run the local stack (``make up`` / ``make demo``).

Commands live one group per module (``applying``, ``inspecting``, ``watching``, ``dev``, ``demo``); the app
that joins them is built in ``__main__``.
"""
