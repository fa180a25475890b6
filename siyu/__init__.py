"""siyu (私域): turn the customers in a brand's own channels into loyal fans."""

__version__ = "0.1.0"
