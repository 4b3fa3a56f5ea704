"""Completes a backup: metadata.json written once, then BackupSucceeded."""
