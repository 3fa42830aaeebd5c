"""The board domain: shapes, reads, the role policy, services (one transaction per change + event)."""
