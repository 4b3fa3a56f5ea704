"""crd-gateway errors.

GatewayError
 └── (none yet: unreadable commands are PoisonMessage from lc2backup.eventing; invalid ones are events)
"""


class GatewayError(Exception):
    """Base of crd-gateway's own errors."""
