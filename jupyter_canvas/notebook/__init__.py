"""Notebook cells run on the server: cell selection, kernel binding, outputs into notebooks."""
