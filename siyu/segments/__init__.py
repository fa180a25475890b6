"""Segments (人群圈选): rules over customer attributes, tags, scores and behaviour."""
