"""Shared plumbing that knows no domain."""
