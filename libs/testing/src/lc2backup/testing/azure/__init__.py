"""Local stand-ins for Azure: Resource Manager (flexible-server backups), managed identity, a copy proxy."""
