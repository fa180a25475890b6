"""Points ledger core: append-only, idempotent entries per customer, and the balance."""
