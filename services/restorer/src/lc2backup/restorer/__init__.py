"""Restores and verifications: intake of restore commands, the restore branches, the verdict."""
