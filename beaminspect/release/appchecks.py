"""Checks about applications and the release's configuration, beside the modules: what
a release upgrade does with them, which is often not what a restart would do.

- an application of the old release that the new one does not have: the relup removes
  it (``remove_application``): its processes stop and its modules are deleted;
- the ``.app`` keys that say how an application starts (``mod``, ``applications``,
  ``included_applications``, ``start_phases``): an upgrade does not restart a running
  application, so a changed start-up does not run;
- the ``registered`` names: checked by systools for clashes, nothing at run time;
- the application environment (``env`` of the ``.app`` file, overridden by the
  release's ``sys.config``): after an upgrade the release handler sets the new values
  and calls ``Mod:config_change(Changed, New, Removed)`` for applications whose
  callback module exports it; without it nothing running is told;
- ``runtime.exs`` (a ``mix release``): evaluated at boot only, never by an upgrade;
- files under ``priv/``: replaced on disk; a NIF library that changed stays loaded in
  its old version until a module that loads it is loaded again.
"""

from __future__ import annotations

from beaminspect import module as _module
from beaminspect.errors import BeamError
from beaminspect.release.layout import AppInfo, Release, proplist
from beaminspect.terms import Atom
from beaminspect.terms.printer import format_term
from beaminspect.terms.source import parse_bytes

__all__ = ["check_applications"]

#: ``.app`` keys that decide how an application starts.
START_KEYS = ("mod", "applications", "included_applications", "start_phases")
#: Names listed in a message before "and N more".
SHOWN = 6


def _some(names) -> str:
    names = list(names)
    head = ", ".join(names[:SHOWN])
    return head + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def check_applications(old: Release, new: Release, changes: dict, out) -> None:
    """Add the application-level findings of the upgrade from ``old`` to ``new`` to
    ``out`` (``out.add(kind, module, function, message, location=, app=)``);
    ``changes``: the gate's module changes by name."""
    for name in sorted(set(old.apps) - set(new.apps)):
        a = old.apps[name]
        if not a.modules:
            continue
        out.add("application_removed", None, None,
                f"application {name}{' ' + a.vsn if a.vsn else ''} is not in the new "
                "release: the upgrade "
                f"removes it (its processes are stopped and its {len(a.modules)} module(s) "
                "deleted); anything still calling them gets undef",
                location=a.app_file_path or a.path, app=name)
    env_old, where_old = _environments(old)
    env_new, where_new = _environments(new)
    for name in sorted(set(old.apps) & set(new.apps)):
        a, b = old.apps[name], new.apps[name]
        _start_keys(name, a, b, out)
        _priv(name, a, b, new, changes, out)
    for name in sorted((set(env_old) | set(env_new)) & set(old.apps) & set(new.apps)):
        _environment(name, env_old.get(name, {}), env_new.get(name, {}),
                     where_new.get(name, set()) | where_old.get(name, set()), new, out)
    _runtime_exs(old, new, out)


# -- .app start-up keys -----------------------------------------------------------------

def _props(a: AppInfo) -> dict | None:
    if a.app_file_terms is None:
        return None
    props = {}
    for key in START_KEYS + ("registered",):
        props[key] = a.app_property(key)
    return props


def _names(v) -> list[str]:
    return [str(x) for x in v if isinstance(x, Atom)] if isinstance(v, list) else []


def _start_keys(name: str, a: AppInfo, b: AppInfo, out) -> None:
    pa, pb = _props(a), _props(b)
    if pa is None or pb is None:
        return
    where = b.app_file_path or b.path
    what = []
    for key in START_KEYS:
        va, vb = pa[key], pb[key]
        if va == vb:
            continue
        if key in ("applications", "included_applications"):
            na, nb = _names(va), _names(vb)
            plus = [x for x in nb if x not in na]
            minus = [x for x in na if x not in nb]
            if not plus and not minus:
                continue        # the same names in another order
            what.append(f"{key} " + ", ".join([f"+{x}" for x in plus] + [f"-{x}" for x in minus]))
        else:
            what.append(f"{key} {_term(va)} -> {_term(vb)}")
    if what:
        out.add("app_start_changed", None, None,
                f"application {name}'s start-up changes ({'; '.join(what)}): an upgrade does "
                "not restart a running application, so the new start-up does not run (a "
                "dependency added here is not started for it, a new callback module's "
                "start/2 is not called) unless the appup restarts it "
                "({restart_application, " + name + "})",
                location=where, app=name)
    ra, rb = _names(pa["registered"]), _names(pb["registered"])
    if set(ra) != set(rb):
        diff = [f"+{x}" for x in rb if x not in ra] + [f"-{x}" for x in ra if x not in rb]
        out.add("app_registered_changed", None, None,
                f"application {name}'s registered names change ({_some(diff)}): systools "
                "checks them for clashes between applications; nothing changes at run time",
                location=where, app=name)


def _term(v) -> str:
    return "none" if v is None else format_term(v)


# -- priv/ --------------------------------------------------------------------------

def _priv(name: str, a: AppInfo, b: AppInfo, new: Release, changes: dict, out) -> None:
    if not a.priv and not b.priv:
        return
    added = [p for p in b.priv if p not in a.priv]
    removed = [p for p in a.priv if p not in b.priv]
    changed = []
    for p in sorted(set(a.priv) & set(b.priv)):
        fa, fb = a.priv[p], b.priv[p]
        try:
            if fa.size != fb.size or fa.digest() != fb.digest():
                changed.append(p)
        except (BeamError, OSError):
            changed.append(p)
    if not (added or removed or changed):
        return
    where = b.path
    parts = [f"{len(x)} {w} ({_some(x)})" for x, w in
             ((changed, "changed"), (added, "added"), (removed, "removed")) if x]
    out.add("priv_changed", None, None,
            f"priv files of {name} change: {'; '.join(parts)}: the upgrade replaces them on "
            "disk, and what a process read from them before keeps its old content",
            location=where, app=name)
    libs = [p for p in changed if p.endswith((".so", ".dll", ".dylib"))]
    if not libs:
        return
    loaders = _nif_loaders(name, new)
    reloaded = sorted(m for m in loaders if changes.get(m) is not None
                      and changes[m].status in ("changed", "added"))
    if loaders and reloaded:
        return
    if loaders:
        why = (f"none of its modules with an on_load function ({_some(sorted(loaders))}) "
               "changes: the running system keeps the old library loaded (a NIF library "
               "is loaded by a module's on_load, only when that module is loaded)")
    else:
        why = ("no module of it has an on_load function to load it again: if the running "
               "system loaded it (as a NIF or a driver), it keeps the old one")
    out.add("nif_library_not_reloaded", None, None,
            f"the native library {_some(libs)} of {name} changes but {why}",
            location=where, app=name)


def _nif_loaders(app: str, rel: Release) -> set[str]:
    """Modules of ``app`` with an on_load function (what loads a NIF library)."""
    out = set()
    for mod in rel.apps[app].modules:
        src = rel.modules.get(mod)
        if src is None:
            continue
        try:
            if _module.load(src.read(), file=src.path).on_load is not None:
                out.add(mod)
        except (BeamError, OSError):
            continue
    return out


# -- the application environment --------------------------------------------------------

def _sys_config(rel: Release) -> dict:
    """``sys.config`` as {application: {key: value}} (file references and anything
    that is not {App, [{Key, Value}]} left out); empty without one."""
    got = rel.configs.get("sys.config")
    if got is None:
        return {}
    display, read = got
    try:
        terms = parse_bytes(read(), file=display)
    except (BeamError, OSError):
        return {}
    if len(terms) != 1 or not isinstance(terms[0], list):
        return {}
    out = {}
    for entry in terms[0]:
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], Atom):
            kv = proplist(entry[1])
            if kv is not None:
                out.setdefault(str(entry[0]), {}).update(kv)
    return out


def _environments(rel: Release) -> tuple[dict, dict]:
    """Each application's environment as the release sets it (``.app`` env, then
    ``sys.config``), and the keys that ``sys.config`` sets."""
    env = {}
    for name, a in rel.apps.items():
        kv = proplist(a.app_property("env", [])) if a.app_file_terms is not None else None
        if kv:
            env[name] = dict(kv)
    sys_config = _sys_config(rel)
    for name, kv in sys_config.items():
        env.setdefault(name, {}).update(kv)
    return env, {name: set(kv) for name, kv in sys_config.items()}


def _environment(name: str, a: dict, b: dict, in_sys_config: set, new: Release,
                 out) -> None:
    keys = sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING))
    if not keys:
        return
    app = new.apps[name]
    sources = {"sys.config" if k in in_sys_config else "its .app env" for k in keys}
    where = (new.configs["sys.config"][0] if "sys.config" in sources and
             "sys.config" in new.configs else app.app_file_path or app.path)
    mod = app.app_property("mod")
    callback = str(mod[0]) if isinstance(mod, tuple) and len(mod) == 2 and \
        isinstance(mod[0], Atom) else None
    what = (f"the environment of {name} changes ({_some(keys)}, from "
            f"{' and '.join(sorted(sources))})")
    if callback is None:
        out.add("config_changed", None, None,
                f"{what}: the release handler sets the new values; {name} is a library "
                "application (no mod), so code that reads them when it runs sees them",
                location=where, app=name)
    elif _exports(new, callback, "config_change", 3):
        out.add("config_changed", None, None,
                f"{what}: the release handler sets the new values and calls "
                f"{callback}:config_change/3 with them after the upgrade",
                location=where, app=name)
    else:
        out.add("config_changed_no_callback", callback, None,
                f"{what}, and {name}'s callback module {callback} exports no "
                "config_change/3: the release handler sets the new values but nothing "
                "running is told; processes that read them at start keep the old ones "
                "until they restart",
                location=where, app=name)


_MISSING = object()


def _exports(rel: Release, mod: str, fn: str, arity: int) -> bool:
    src = rel.modules.get(mod)
    if src is None:
        return False
    try:
        m = _module.load(src.read(), file=src.path)
        return any(str(e.name) == fn and e.arity == arity for e in m.exports)
    except (BeamError, OSError):
        return False


def _runtime_exs(old: Release, new: Release, out) -> None:
    a, b = old.configs.get("runtime.exs"), new.configs.get("runtime.exs")
    if b is None:
        return
    try:
        same = a is not None and a[1]() == b[1]()
    except (BeamError, OSError):
        same = False
    if same:
        return
    out.add("runtime_config_changed", None, None,
            f"{b[0]} {'is new' if a is None else 'changes'}: runtime.exs is evaluated when "
            "the release boots, never by a hot upgrade, so what it sets takes effect at "
            "the next restart only",
            location=b[0], app=None)
