"""The ``beaminspect`` command line, a thin consumer of the library: the typer app in
:mod:`beaminspect.cli.app`, the command bodies in :mod:`beaminspect.cli.commands`."""
