"""Document-library branch: server-side transfer."""
