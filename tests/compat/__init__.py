"""Compatibility with the 2018 releases: their samples and example programs, run unchanged."""
