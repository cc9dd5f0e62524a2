"""Where a gate finding points in the sources: the file a module was compiled from and
the first line of the function concerned, for code-scanning reports (SARIF).

A beam records its source as the compiler saw it: the ``source`` of its CInf chunk (an
absolute path on the build machine; absent in ``deterministic`` builds) and, in the
line table, the file of each function.  :func:`source_locations` turns that into a path
relative to the repository (``source_root``, the current directory by default):

1. a source path under the root is made relative to it;
2. otherwise the longest tail of the path that exists under the root is taken (a CI
   build's ``/build/x/apps/shop/src/shop.erl`` is the checkout's
   ``apps/shop/src/shop.erl``);
3. otherwise (a deterministic build records only ``shop.erl``) a file of that name under
   the root, outside ``_build``, ``deps`` and hidden directories, when exactly one exists.

An appup finding points at the application's ``.appup`` (or ``.appup.src``) in the root.

A finding whose source is not under the root in any of these ways (a dependency's
module, a release-level finding) points at the file it was found in when that is under
the root (a release built in the checkout's ``_build``), else at the project's manifest
(``rebar.config``, ``mix.exs``, ``erlang.mk``, ``relx.config`` at the root: where its
dependencies and release are declared), line 1; with none of these, it keeps the beam
(or appup) as its location.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from beaminspect.errors import BeamError
from beaminspect.module import load

__all__ = ["SourceLocation", "source_locations"]

#: Directories that hold build outputs or other projects, never the sources searched.
_SKIP_DIRS = frozenset({"_build", "deps", "node_modules", "ebin", "priv"})
#: The files that declare a project's dependencies and release, at the source root.
MANIFESTS = ("rebar.config", "mix.exs", "erlang.mk", "relx.config")
#: At most this many directory entries are looked at when searching by file name.
_SEARCH_LIMIT = 200_000


@dataclass(frozen=True)
class SourceLocation:
    path: str                # relative to the source root, "/"-separated
    line: int | None         # the function's first line, when a function is named


class _Finder:
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._by_name: dict[str, list[str]] | None = None

    def _index(self) -> dict[str, list[str]]:
        if self._by_name is None:
            self._by_name = {}
            seen = 0
            for d, dirs, files in os.walk(self.root):
                dirs[:] = sorted(x for x in dirs if x not in _SKIP_DIRS and not x.startswith("."))
                for f in files:
                    if f.endswith((".erl", ".ex", ".hrl", ".exs", ".appup", ".appup.src")):
                        rel = os.path.relpath(os.path.join(d, f), self.root)
                        self._by_name.setdefault(f, []).append(rel.replace(os.sep, "/"))
                seen += len(files) + len(dirs)
                if seen > _SEARCH_LIMIT:
                    break
        return self._by_name

    def under_root(self, path: str) -> str | None:
        """``path`` relative to the root when it is a file under it (an archive member,
        ``x.tar.gz!lib/...``, by its archive)."""
        archive, sep, _member = path.partition("!")
        real = os.path.realpath(archive if sep else path)
        if real.startswith(self.root + os.sep) and os.path.isfile(real):
            return os.path.relpath(real, self.root).replace(os.sep, "/")
        return None

    def manifest(self) -> str | None:
        return next((m for m in MANIFESTS if os.path.isfile(os.path.join(self.root, m))),
                    None)

    def find(self, source: str) -> str | None:
        if os.path.isabs(source):
            real = os.path.realpath(source)
            if real.startswith(self.root + os.sep) and os.path.isfile(real):
                return os.path.relpath(real, self.root).replace(os.sep, "/")
        parts = [p for p in source.replace("\\", "/").split("/") if p not in ("", ".")]
        for i in range(len(parts) - 1):
            tail = "/".join(parts[i:])
            if ".." not in parts[i:] and os.path.isfile(os.path.join(self.root, tail)):
                return tail
        if parts:
            hits = self._index().get(parts[-1], [])
            if len(hits) == 1:
                return hits[0]
        return None


def _split(function: str | None, module: str) -> tuple[str, int] | None:
    """``("f", a)`` of a finding's ``mod:f/a`` (or ``f/a``) in ``module``."""
    if not function:
        return None
    m, sep, fa = function.rpartition(":")
    if sep and m != module:
        return None
    name, _, arity = fa.rpartition("/")
    if not name or not arity.isdigit():
        return None
    return name, int(arity)


def source_locations(report, source_root: str | None = None) -> dict:
    """``(module, function, location) -> SourceLocation`` for the findings of a
    :class:`~beaminspect.release.gate.GateReport` whose module's source is found under
    ``source_root`` (default: the current directory)."""
    finder = _Finder(source_root or os.getcwd())
    out: dict = {}
    cache: dict = {}
    for f in report.findings:
        key = (f.module, f.function, f.location)
        if key in out:
            continue
        found = _source_location(f, report, finder, cache)
        if found is None:
            path = (f.location and finder.under_root(f.location)) or finder.manifest()
            found = SourceLocation(path, None) if path else None
        if found is not None:
            out[key] = found
    return out


def _source_location(f, report, finder: _Finder, cache: dict) -> SourceLocation | None:
    """The source file (and function line) of finding ``f``, when it is in the root."""
    if f.location and f.location.endswith(".appup"):
        # an appup finding points at the appup (or the .appup.src it is made from)
        name = f.location.replace("\\", "/").rsplit("/", 1)[-1]
        path = finder.find(name) or finder.find(name + ".src")
        return SourceLocation(path, None) if path is not None else None
    if not f.module:
        return None
    if f.module not in cache:
        src = report.new.modules.get(f.module) or report.old.modules.get(f.module)
        m = None
        if src is not None:
            try:
                m = load(src.read(), file=src.path)
            except BeamError:
                m = None
        cache[f.module] = m
    m = cache[f.module]
    if m is None:
        return None
    fa = _split(f.function, f.module)
    line = None
    source = m.source
    if fa is not None:
        try:
            fn = m.function(*fa)
        except BeamError:
            fn = None
        if fn is not None and fn.lines:
            line = fn.lines[0]
            if source is None:
                loc = next((v for ins in fn.instructions if ins.name == "line"
                            for v in ins.values if hasattr(v, "file")), None)
                source = getattr(loc, "file", None)
    if source is None and m.line_table is not None and m.line_table.names:
        # names[0] is the module's own file; an Elixir module's is named after it
        names = m.line_table.names
        source = names[1] if len(names) > 1 else names[0]
    path = finder.find(source) if source else None
    return SourceLocation(path, line) if path is not None else None
