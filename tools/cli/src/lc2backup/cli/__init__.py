"""The lc2backup command line."""
