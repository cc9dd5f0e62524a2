"""One helper: run a function with Python's cyclic garbage collector paused.

Decoding, rendering and analysing a module build hundreds of thousands of small
records (instructions, operands, normal forms) and next to no reference cycles: they
are freed by reference counting.  The collector's passes over those records, and over
everything a worker process inherited, cost from a fifth to a third of the time of
that work, so the functions doing it run with the collector paused; whatever cycles
they do make are collected at the first pass after it is resumed.
"""

from __future__ import annotations

import functools
import gc

__all__ = ["paused_gc"]


def paused_gc(func):
    """``func`` with the cyclic garbage collector paused while it runs (and left as it
    was when it was already paused)."""
    @functools.wraps(func)
    def paused(*args, **kwargs):
        if not gc.isenabled():
            return func(*args, **kwargs)
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            gc.enable()
    return paused
