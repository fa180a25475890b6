"""Events and orders: what customers did, ingested singly, in batches or from files."""
