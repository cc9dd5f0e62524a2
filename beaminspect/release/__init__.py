"""Releases: archives and layouts, the release gate, appups and policy."""
