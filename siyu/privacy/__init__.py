"""Privacy: who may see personal data (masking by role), the append-only audit log, PIPL
data-subject export and erasure, the registry of tables holding customer data, retention."""
