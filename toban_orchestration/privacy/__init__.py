"""Retention, workspace deletion and a person's right to erasure (see README, "Privacy")."""
