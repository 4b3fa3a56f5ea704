"""Command intake (NATS, Kubernetes) and BackupRequest status."""
