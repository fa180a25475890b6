"""Staff users with roles, console sessions and API keys."""
