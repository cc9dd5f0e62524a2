"""Comparing two versions of a module: the diff, the hot-load model and its findings."""
