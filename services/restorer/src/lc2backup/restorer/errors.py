"""restorer errors.

RestorerError
 └── (none of its own: provider failures use lc2backup.providers' tree; handler outcomes use eventing's)
"""


class RestorerError(Exception):
    """Base of restorer's own errors."""
