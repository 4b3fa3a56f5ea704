"""The ``lc2backup`` command line: apply BackupRequest manifests, list, inspect and watch backups through the
projection API, restore and verify them, and run the local stack (``make up`` / ``make demo``).

Commands live one group per module (``applying``, ``inspecting``, ``watching``, ``restoring``, ``dev``,
``demo``); the app that joins them is built in ``__main__``.
"""
