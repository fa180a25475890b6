"""Durable background jobs: stored in the database, claimed safely, retried, never lost."""
