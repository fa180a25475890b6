"""Messaging channels: the protocols siyu speaks with the platforms its customers write from."""
