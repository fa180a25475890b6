"""Customer analytics: pure numeric models of customer value and behaviour (no database)."""
