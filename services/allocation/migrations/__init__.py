"""Numbered SQL migrations of the allocation database."""
