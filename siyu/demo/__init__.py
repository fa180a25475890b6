"""The demo brand: a fictional Chinese health-food brand with realistic customers."""
