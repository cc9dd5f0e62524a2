"""The ``beaminspect`` command line, a thin consumer of the library."""
