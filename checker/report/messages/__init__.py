"""Message catalogues: one dict per language, the same keys in each (a test checks)."""
