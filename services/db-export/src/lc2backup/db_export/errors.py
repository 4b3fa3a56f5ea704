"""db-export errors.

DbExportError
 └── (none of its own: provider failures use lc2backup.providers' tree; handler outcomes use eventing's)
"""


class DbExportError(Exception):
    """Base of db-export's own errors."""
