"""PostgreSQL projection of every event and the projection API."""
