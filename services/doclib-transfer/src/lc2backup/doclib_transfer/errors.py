"""doclib-transfer errors.

DoclibTransferError
 └── (none of its own: provider failures use lc2backup.providers' tree; handler outcomes use eventing's)
"""


class DoclibTransferError(Exception):
    """Base of doclib-transfer's own errors."""
