"""What the cross-module checks of a release (calls, load order, appups) know of one
module version: its name, exports, imports and behaviours."""

from __future__ import annotations

from dataclasses import dataclass

from beaminspect import module as _module
from beaminspect.errors import BeamError

__all__ = ["ModuleFacts", "module_facts", "read_facts"]


@dataclass(frozen=True)
class ModuleFacts:
    """What the cross-module checks need to know of one module version."""

    name: str
    exports: frozenset           # "f/a"
    imports: tuple               # (module, function, arity)
    behaviours: tuple = ()

    def exports_fa(self, fa: str) -> bool:
        return fa in self.exports


def module_facts(m) -> ModuleFacts:
    """The facts of a loaded :class:`~beaminspect.module.BeamModule`."""
    return ModuleFacts(m.name, frozenset(e.mfa for e in m.exports),
                       tuple((i.module, i.function, i.arity) for i in m.imports),
                       tuple(m.behaviours))


def read_facts(src) -> ModuleFacts | None:
    """The facts of a release's module file (anything with ``read()`` and ``path``), read
    only when needed; None when the file cannot be read as a module."""
    try:
        return module_facts(_module.load(src.read(), file=src.path))
    except BeamError:
        return None
