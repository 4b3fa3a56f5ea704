"""metadata errors.

MetadataError
 └── (none of its own: store failures use lc2backup.providers' tree; handler outcomes use eventing's)
"""


class MetadataError(Exception):
    """Base of the metadata service's own errors."""
