"""Corkboard server: app factory, settings, HTTP controllers, auth, middleware and CLI."""
