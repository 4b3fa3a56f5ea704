"""Database branch: snapshot and export."""
