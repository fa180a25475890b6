"""Customers: profiles, identities across channels, tags, consent, referrals and merges."""
