"""Natural-language understanding core: intent classification, FAQ retrieval, metrics."""
