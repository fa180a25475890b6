"""Tracked content: articles, product cards and mini-program pages sent with per-recipient
short links, whose clicks are recorded on the customer who received them."""
