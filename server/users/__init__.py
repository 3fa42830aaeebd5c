"""Users: admin listing and management, self service, the audit log."""
