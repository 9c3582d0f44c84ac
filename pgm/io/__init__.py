"""Converters between foreign model formats (BIF, bnlearn's JSON) and graph-file data."""
