"""The gate's policy: severity per finding kind, the failure threshold, external modules.

A policy is a TOML table.  ``--policy FILE`` takes a ``beaminspect.toml`` (the keys at
top level), or any TOML file with a ``[tool.beaminspect]`` table (``pyproject.toml``
among them).  Without ``--policy``, the nearest ``beaminspect.toml`` or
``pyproject.toml`` with a ``[tool.beaminspect]`` table, in the current directory or a
parent (Erlang and Elixir projects keep ``beaminspect.toml`` beside ``rebar.config`` or
``mix.exs``), gives it; none found means the defaults.  The keys::

    fail_on = "warning"                 # info, warning, error or never
    external = ["cowboy", "my_vendored_app"]   # module or application names

    [severity]                          # per finding kind: info, warning, error or off
    load_order = "info"
    appup_missing = "off"

Unknown keys, kinds or severities raise :class:`PolicyError` naming the key.  The kinds
are those of the registry, :mod:`beaminspect.analysis.findings` (``beaminspect kinds``
lists them).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from beaminspect.analysis.findings import DEFAULTS, FAIL_ON_VALUES, KINDS, SEVERITY_VALUES

__all__ = ["Policy", "PolicyError", "load_policy", "parse_policy", "find_pyproject",
           "find_policy_file", "SEVERITY_VALUES", "FAIL_ON_VALUES", "known_kinds",
           "POLICY_FILE"]

#: The file a project keeps its policy in, found upward from the current directory.
POLICY_FILE = "beaminspect.toml"

TOP_KEYS = ("severity", "fail_on", "external")


class PolicyError(ValueError):
    """A policy that cannot be used; ``key`` names the offending key."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        where = f"{source}: " if source else ""
        super().__init__(where + message)


@dataclass(frozen=True)
class Policy:
    severities: dict = field(default_factory=dict)   # kind -> info/warning/error/off
    fail_on: str | None = None                       # None: the caller's default
    external: frozenset = frozenset()                # module or application names
    source: str | None = None                        # where it was read from

    def severity(self, kind: str, default: str) -> str:
        return self.severities.get(kind, default)

    def with_external(self, names) -> "Policy":
        return Policy(dict(self.severities), self.fail_on,
                      self.external | frozenset(names), self.source)


def known_kinds() -> dict:
    """Every finding kind a policy can name -> (default severity, summary), from the
    registry."""
    return dict(DEFAULTS)


def parse_policy(data: dict, *, source: str | None = None, prefix: str = "") -> Policy:
    """A policy from the parsed TOML table (``prefix`` is used in messages only, e.g.
    ``tool.beaminspect.``)."""
    if not isinstance(data, dict):
        raise PolicyError("the policy must be a table", source=source)
    for key in data:
        if key not in TOP_KEYS:
            raise PolicyError(f"unknown key {prefix}{key!s} (known: {', '.join(TOP_KEYS)})",
                              source=source, key=prefix + str(key))
    sev_table = data.get("severity", {})
    if not isinstance(sev_table, dict):
        raise PolicyError(f"{prefix}severity must be a table of kind = severity",
                          source=source, key=prefix + "severity")
    severities = {}
    for kind, value in sev_table.items():
        key = f"{prefix}severity.{kind}"
        if kind not in KINDS:
            raise PolicyError(f"unknown finding kind {kind!r} in {key} (the kinds: "
                              "beaminspect kinds)", source=source, key=key)
        if value not in SEVERITY_VALUES:
            raise PolicyError(f"{key} = {value!r}: the severity must be one of "
                              f"{', '.join(SEVERITY_VALUES)}", source=source, key=key)
        severities[kind] = value
    fail_on = data.get("fail_on")
    if fail_on is not None and fail_on not in FAIL_ON_VALUES:
        raise PolicyError(f"{prefix}fail_on = {fail_on!r}: must be one of "
                          f"{', '.join(FAIL_ON_VALUES)}", source=source, key=prefix + "fail_on")
    external = data.get("external", [])
    if isinstance(external, str):
        external = [external]
    if not isinstance(external, list) or not all(isinstance(x, str) and x for x in external):
        raise PolicyError(f"{prefix}external must be a list of module or application names",
                          source=source, key=prefix + "external")
    return Policy(severities, fail_on, frozenset(external), source)


def _read_toml(path: str) -> dict:
    # Imported here: most runs find no policy file, and the parser costs 10 ms to load.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as e:
        raise PolicyError(f"cannot read: {e.strerror or e}", source=path) from None
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"not valid TOML: {e}", source=path) from None


def find_pyproject(start: str | None = None) -> str | None:
    """The nearest ``pyproject.toml`` in ``start`` (default: the current directory) or
    one of its parents."""
    for d in _upward(start):
        p = os.path.join(d, "pyproject.toml")
        if os.path.isfile(p):
            return p
    return None


def _upward(start: str | None):
    d = os.path.abspath(start or os.getcwd())
    while True:
        yield d
        parent = os.path.dirname(d)
        if parent == d:
            return
        d = parent


def _tool_table(data: dict):
    tool = data.get("tool")
    return tool.get("beaminspect") if isinstance(tool, dict) else None


def find_policy_file(start: str | None = None) -> str | None:
    """The nearest ``beaminspect.toml``, or ``pyproject.toml`` with a
    ``[tool.beaminspect]`` table, in ``start`` or a parent (the nearer directory wins;
    in one directory, ``beaminspect.toml``)."""
    for d in _upward(start):
        p = os.path.join(d, POLICY_FILE)
        if os.path.isfile(p):
            return p
        p = os.path.join(d, "pyproject.toml")
        if os.path.isfile(p) and _tool_table(_read_toml(p)) is not None:
            return p
    return None


def policy_from_file(path: str) -> Policy:
    """The policy in ``path``: its ``[tool.beaminspect]`` table when it has one (any
    TOML file, ``pyproject.toml`` included), else its top-level keys (a
    ``beaminspect.toml``).  A ``pyproject.toml`` without the table is the defaults."""
    data = _read_toml(path)
    table = _tool_table(data)
    if table is not None:
        return parse_policy(table, source=path, prefix="tool.beaminspect.")
    if os.path.basename(path) == "pyproject.toml" or "tool" in data:
        return Policy(source=path)
    return parse_policy(data, source=path)


def load_policy(path: str | None = None, *, start: str | None = None) -> Policy:
    """The policy of ``path``, else of the nearest policy file (see the module
    docstring), else the defaults."""
    if path is None:
        path = find_policy_file(start)
        if path is None:
            return Policy()
    return policy_from_file(path)
