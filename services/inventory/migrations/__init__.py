"""Numbered SQL migrations of the inventory database."""
