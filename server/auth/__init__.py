"""Accounts and authentication: passwords, tokens, sessions, personal access tokens."""
