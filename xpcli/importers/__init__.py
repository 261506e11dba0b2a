"""Importers: one module per foreign log format."""
