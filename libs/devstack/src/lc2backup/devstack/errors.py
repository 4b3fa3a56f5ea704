"""Errors of the local stack.

StackError
 └── (no subclasses: every failure names the server, the reason and its log file)
"""


class StackError(RuntimeError):
    """A server of the local stack could not be started, probed or stopped."""
