"""Figures: frames in, a matplotlib Figure out. Nothing here reads files."""
