"""Comparing two releases: what an upgrade from OLD to NEW changes and breaks.

:func:`compare_releases` opens both releases, matches modules by name and sorts them
into added, removed, changed and unchanged.  Identical files are recognised from their
sizes and bytes and never parsed; files that differ are parsed and
compared by module MD5 (an equal MD5 is unchanged: no reload needed).  Each changed
module gets its hot-load report (:func:`beaminspect.analysis.hotload.analyse`); then come the
findings that need the whole new release (calls to functions that do not exist, load
order, modules that moved) and the appup checks (:mod:`beaminspect.release.appup`).

Calls are checked where the upgrade can change them: every call made by an added or
changed module into an added or changed module, new calls into unchanged modules, and
the calls of unchanged modules into modules that lost exports or were removed.  A call
between two byte-identical modules was there before the upgrade.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Callable

from beaminspect import module as _module
from beaminspect.code.disasm import Literal
from beaminspect.errors import BeamError, format_error
from beaminspect.gcpause import paused_gc
from beaminspect.analysis.findings import (KINDS, SEVERITIES, Finding, effective_severity,
                                           exceeds, worst)
from beaminspect.analysis.hotload import HotLoadReport, analyse, state_changed
from beaminspect.analysis.waits import WaitIndex
from beaminspect.release.appchecks import check_applications
from beaminspect.release.emulator import (HOT_LOAD_KINDS, RESTART_TAKES_NEW, check_emulator,
                                          emulator_changes, new_emulator_release)
from beaminspect.release.appup import check_appups, settled_by_appups
from beaminspect.release.facts import ModuleFacts, module_facts, read_facts
from beaminspect.release.policy import Policy
from beaminspect.release.layout import Release, open_release

__all__ = ["ModuleChange", "ModuleFacts", "GateReport", "compare_releases"]

#: Modules that are never part of a release under check (BIFs and the runtime).
ALWAYS_EXTERNAL = frozenset({"erlang", "erts_internal", "init", "prim_file", "prim_inet",
                             "zlib", "erl_prim_loader", "prim_eval", "atomics", "counters",
                             "persistent_term", "erts_code_purger", "erl_tracer"})

STATUS_ORDER = ("added", "removed", "changed", "unchanged")


@dataclass(frozen=True)
class ModuleChange:
    """One module name of either release and what happened to it."""

    name: str
    status: str                          # added, removed, changed, unchanged
    old_app: str | None = None
    new_app: str | None = None
    old_path: str | None = None
    new_path: str | None = None
    bytes_identical: bool = False        # unchanged without being parsed
    report: HotLoadReport | None = None  # changed modules only
    error: str | None = None             # one line when a file could not be read
    state_changed: bool = False          # a gen_* module whose state records changed

    @property
    def app(self) -> str | None:
        return self.new_app if self.new_app is not None else self.old_app


@dataclass
class GateReport:
    old_root: str
    new_root: str
    old: Release
    new: Release
    modules: dict                       # name -> ModuleChange, sorted by name
    findings: list                      # Finding, sorted
    dep_mods: dict                      # module -> sorted list of modules to load first
    facts_new: dict = field(default_factory=dict, repr=False)
    facts_old: dict = field(default_factory=dict, repr=False)
    policy: Policy = field(default_factory=Policy)
    #: The applications a restart on the new emulator starts new (empty when the
    #: emulator does not change): see :mod:`beaminspect.release.emulator`.
    restarted: frozenset = frozenset()

    def by_status(self, status: str) -> list[ModuleChange]:
        return [m for m in self.modules.values() if m.status == status]

    def counts(self) -> dict:
        out = {s: 0 for s in STATUS_ORDER}
        for m in self.modules.values():
            out[m.status] += 1
        return out

    def severity_counts(self) -> dict:
        out = {s: 0 for s in ("error", "warning", "info")}
        for f in self.findings:
            out[f.severity] += 1
        return out

    def worst(self) -> str | None:
        return worst(self.findings)

    def failed(self, fail_on: str) -> bool:
        """Does a finding reach ``fail_on`` (info, warning, error or never)?"""
        return exceeds(self.findings, fail_on)

    def add_findings(self, findings) -> None:
        """Add findings made outside the release comparison (a running node's), in the
        report's order."""
        self.findings = sorted(list(self.findings) + list(findings), key=_finding_order)

    def app_versions(self) -> list[tuple[str, str | None, str | None]]:
        names = sorted(set(self.old.apps) | set(self.new.apps))
        return [(n, self.old.apps[n].vsn if n in self.old.apps else None,
                 self.new.apps[n].vsn if n in self.new.apps else None) for n in names]


# ---------------------------------------------------------------------------
# Per-module work (runs in worker processes when there are many changed modules)


def _loadable(m):
    """Decode what the code loader reads (so a broken file is reported here); debug
    info and docs are decoded later only if the analysis needs them."""
    m.atoms, m.exports, m.locals, m.imports, m.lambdas, m.code_header, m.attributes
    for _ in m.literals:
        pass
    m.md5, m.functions
    return m


@paused_gc
def _analyse_job(item, running_otp, severities, waits=None):
    """(name, old source, new source) -> ("ok", report, old facts, new facts, state
    changed), ("same", old facts, new facts) or ("error", side, path, one-line
    message).  The bytes are read here, in the worker that analyses them, so that no
    process holds every changed module's."""
    name, o, n = item
    try:
        old_bytes, new_bytes = o.read(), n.read()
    except (BeamError, OSError) as e:
        return ("error", "new", n.path, format_error(e) if isinstance(e, BeamError)
                else f"{n.path}: {e}")
    try:
        a = _loadable(_module.load(old_bytes, file=o.path))
    except BeamError as e:
        return ("error", "old", o.path, format_error(e))
    try:
        b = _loadable(_module.load(new_bytes, file=n.path))
    except BeamError as e:
        return ("error", "new", n.path, format_error(e))
    if a.md5 == b.md5 and a.name == b.name:
        return ("same", module_facts(a), module_facts(b))
    try:
        report = analyse(a, b, running_otp=running_otp, severities=severities, waits=waits)
        state = state_changed(a, b, report)
    except BeamError as e:
        return ("error", "new", n.path, format_error(e))
    return ("ok", report, module_facts(a), module_facts(b), state)


#: Changed modules adding up to this many bytes are worth a second process even when
#: they are few (their analysis costs about 1 s per MB; starting a worker, ~10 ms).
POOL_MIN_BYTES = 64 * 1024


def _run_jobs(items, running_otp, severities, jobs, finished=None, waits=None):
    """Results in the order of ``items``, whether a pool is used or not;
    ``finished()`` is called as each one is done (a pool's come in another order).
    In a pool, this process only gathers the results: it holds them all, and a
    large module analysed here as well would add its own peak to theirs."""
    from beaminspect.parallel import MIN_FILES_FOR_POOL, map_files

    def size(i):
        return items[i][1].size + items[i][2].size
    if len(items) >= MIN_FILES_FOR_POOL or sum(map(size, range(len(items)))) >= POOL_MIN_BYTES:
        # Largest first, so that one big module does not finish last on its own.
        order = sorted(range(len(items)), key=lambda i: -size(i))
        results: list = [None] * len(items)
        for i, r in zip(order, map_files(_analyse_job, [items[i] for i in order],
                                         (running_otp, severities, waits), jobs,
                                         min_files=2, here=False)):
            results[i] = r
            if finished is not None:
                finished()
        yield from results
    else:
        for it in items:
            r = _analyse_job(it, running_otp, severities, waits)
            if finished is not None:
                finished()
            yield r


# ---------------------------------------------------------------------------
# The comparison


class _Findings:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.items: list[Finding] = []

    def add(self, kind, module, function, message, *, location=None, app=None,
            severity=None):
        sev = effective_severity(kind, severity, self.policy.severities)
        if sev == "off":
            return
        self.items.append(Finding(kind, sev, function, message, module, location, app))


def compare_releases(old_path, new_path, *, policy: Policy | None = None,
                     external=(), running_otp: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     jobs: int | None = None,
                     old_release: Release | None = None,
                     new_release: Release | None = None,
                     target_otp: int | None = None) -> GateReport:
    """Compare the release at ``old_path`` (the running one) with ``new_path``.

    ``policy``: severities, external names (see :mod:`beaminspect.release.policy`);
    ``external``: more module or application names whose exports are not checked;
    ``running_otp``: OTP release of the running system (for the opcode check);
    ``target_otp``: OTP release of the new emulator, when it cannot be told from the
    new release's ERTS version (see :mod:`beaminspect.release.emulator`);
    ``progress(done, total)``: called as modules are compared.
    Raises :class:`BeamError` when a release cannot be read at all.
    """
    policy = (policy or Policy()).with_external(external)
    terms_cache: dict = {}          # .app/.appup files alike in both are parsed once
    old = old_release or open_release(old_path, terms_cache=terms_cache)
    new = new_release or open_release(new_path, terms_cache=terms_cache)
    out = _Findings(policy)
    # The new modules are loaded by the emulator the upgrade moves to, if it changes.
    loading_otp = new_emulator_release(old, new, target_otp) or running_otp

    names = sorted(set(old.modules) | set(new.modules))
    total = len(names)
    done = 0
    changes: dict[str, ModuleChange] = {}
    facts_new: dict[str, ModuleFacts] = {}
    facts_old: dict[str, ModuleFacts] = {}
    pending = []
    atom_text: dict[str, bytes] = {}     # unchanged modules: what _mentions searches
    for name in names:
        o, n = old.modules.get(name), new.modules.get(name)
        if o is None:
            changes[name] = ModuleChange(name, "added", new_app=n.app, new_path=n.path)
        elif n is None:
            changes[name] = ModuleChange(name, "removed", old_app=o.app, old_path=o.path)
        else:
            try:
                # Equal sizes, then equal bytes (a direct comparison beats hashing both).
                same = False
                if o.size == n.size:
                    data = n.read()
                    same = o.read() == data
                    if same:
                        atom_text[name] = _atom_text(data)
            except (BeamError, OSError) as e:
                same = None
                msg = format_error(e) if isinstance(e, BeamError) else \
                    f"{n.path}: cannot read: {e.strerror or e}"
                changes[name] = ModuleChange(name, "changed", o.app, n.app, o.path, n.path,
                                             error=msg)
                out.add("unreadable_module", name, None, msg,
                        location=getattr(e, "file", None) or n.path, app=n.app)
            if same:
                changes[name] = ModuleChange(name, "unchanged", o.app, n.app, o.path, n.path,
                                             bytes_identical=True)
            elif same is False:
                pending.append((name, o, n))
                continue
        done += 1
        if progress is not None and done % 64 == 0:
            progress(done, total)

    severities = {k: v for k, v in policy.severities.items() 
                  if k in KINDS and KINDS[k].scope == "module"}
    # The running release's modules on the new emulator, if it changes (first: the
    # processes that check them are forked before this one holds the reports).
    check_emulator(old, new, out, target_otp=target_otp, running_otp=running_otp, jobs=jobs)
    by_name = {name: (o, n) for name, o, n in pending}
    analysed = [done]

    def finished() -> None:
        analysed[0] += 1
        if progress is not None:
            progress(analysed[0], total)

    # Which calls block is read from the running release's own code (each worker
    # fills its copy of the index as its modules ask).
    waits = WaitIndex.from_release(old)
    # On another emulator, the restart starts the new erts, kernel, stdlib and sasl
    # fresh: their modules are not hot-loaded.
    restarted = RESTART_TAKES_NEW if emulator_changes(old, new, target_otp, running_otp) \
        else frozenset()
    for item, result in zip(pending, _run_jobs(pending, loading_otp, severities, jobs,
                                             finished, waits)):
        name = item[0]
        o, n = by_name[name]
        if result[0] == "error":
            _, side, path, msg = result
            changes[name] = ModuleChange(name, "changed", o.app, n.app, o.path, n.path,
                                         error=msg)
            out.add("unreadable_module", name, None, msg, location=path,
                    app=n.app if side == "new" else o.app)
        elif result[0] == "same":
            changes[name] = ModuleChange(name, "unchanged", o.app, n.app, o.path, n.path)
            facts_old[name], facts_new[name] = result[1], result[2]
        else:
            _, report, fo, fn, state = result
            if n.app in restarted and o.app in restarted:
                report = replace(report, findings=tuple(
                    f for f in report.findings if f.kind not in HOT_LOAD_KINDS))
            changes[name] = ModuleChange(name, "changed", o.app, n.app, o.path, n.path,
                                         report=report, state_changed=state)
            facts_old[name], facts_new[name] = fo, fn
            for f in report.findings:
                out.add(f.kind, name, f"{name}:{f.function}" if f.function else None,
                        f.message, location=n.path, app=n.app, severity=f.severity)
    if progress is not None:
        progress(total, total)

    # Facts of added modules (every call they make is new).
    for name, ch in changes.items():
        if ch.status == "added":
            try:
                facts_new[name] = module_facts(_module.load(new.modules[name].read(),
                                                         file=ch.new_path))
            except BeamError as e:
                changes[name] = ModuleChange(name, "added", new_app=ch.new_app,
                                             new_path=ch.new_path, error=format_error(e))
                out.add("unreadable_module", name, None, format_error(e), location=ch.new_path,
                        app=ch.new_app)
            else:
                if facts_new[name].name != name:
                    out.add("module_file_mismatch", name, None,
                            f"{ch.new_path} defines module {facts_new[name].name}, not {name}: "
                            "the code server cannot load it under this name",
                            location=ch.new_path, app=ch.new_app)

    for ch in changes.values():
        if ch.report is not None and ch.report.diff.new_name != ch.name:
            out.add("module_file_mismatch", ch.name, None,
                    f"{ch.new_path} defines module {ch.report.diff.new_name}, not {ch.name}",
                    location=ch.new_path, app=ch.new_app)

    dep_mods = _cross_module(old, new, changes, facts_old, facts_new, policy, out,
                             atom_text, restarted)
    _release_level(old, new, changes, out)
    _protocols(old, new, changes, out)
    check_applications(old, new, changes, out)

    report = GateReport(os.fspath(old_path), os.fspath(new_path), old, new, changes, [],
                        dep_mods, facts_new, facts_old, policy, restarted)
    for f in check_appups(report):
        out.add(f.kind, f.module, f.function, f.message, location=f.location, app=f.app,
                severity=f.severity)
    report.findings = sorted(settled_by_appups(report, out.items), key=_finding_order)
    return report


def _finding_order(f: Finding):
    return (-SEVERITIES.index(f.severity), f.module or "", f.kind, f.function or "", f.message)


def _external_modules(old: Release, new: Release, policy: Policy) -> set:
    ext = set(ALWAYS_EXTERNAL)
    for name in policy.external:
        ext.add(name)
        for rel in (old, new):
            app = rel.apps.get(name)
            if app is not None:
                ext.update(app.modules)
    return ext


def _atom_text(data: bytes) -> bytes | None:
    """The bytes that name every atom of a module: its atom table when OTP wrote it
    first, else the whole file; None for a compressed file (its atoms are unknown)."""
    if data[:2] == b"\x1f\x8b":
        return None
    if data[12:16] in (b"AtU8", b"Atom"):
        return data[20:20 + int.from_bytes(data[16:20], "big")]
    return data


def _mentions(src, names: list, atom_text: dict | None = None) -> bool:
    """Cheap test before parsing an unchanged caller: can its atom table name one of
    ``names``?  (Compressed files are always parsed.)  ``atom_text`` holds the atom
    tables already read, by module name."""
    text = atom_text.get(src.name) if atom_text else None
    if text is None:
        text = _atom_text(src.read())
        if text is None:
            return True
    return any(n in text for n in names)


def _cross_module(old: Release, new: Release, changes: dict, facts_old: dict,
                  facts_new: dict, policy: Policy, out: _Findings,
                  atom_text: dict | None = None, restarted: frozenset = frozenset()) -> dict:
    """Calls between modules: undefined and removed functions, and the load order
    (``restarted``: the applications a restart on the new emulator starts new)."""
    external = _external_modules(old, new, policy)
    removed_modules = {n for n, c in changes.items() if c.status == "removed"}
    moving = {n for n, c in changes.items() if c.status in ("added", "changed")
              and n in facts_new}
    exports_removed: dict[str, set] = {}
    for n, c in changes.items():
        if c.report is not None:
            exports_removed[n] = set(c.report.diff.exports_removed)

    def exports_of(mod: str) -> frozenset | None:
        f = facts_new.get(mod)
        if f is None and mod in new.modules and changes[mod].error is None:
            f = read_facts(new.modules[mod])
            if f is not None:
                facts_new[mod] = f
        return f.exports if f is not None else None

    reported: set = set()

    def check_call(caller: str, callee: str, fn: str, arity: int, new_call: bool):
        if callee in external or callee == caller:
            return
        fa = f"{fn}/{arity}"
        key = (caller, callee, fa)
        if key in reported:
            return
        c = changes[caller]
        if callee in removed_modules:
            reported.add(key)
            out.add("undef_after_upgrade", caller, f"{callee}:{fa}",
                    f"{caller} calls {callee}:{fa}, but module {callee} is removed by the "
                    "upgrade: the call raises undef", location=c.new_path, app=c.new_app)
            return
        if callee not in new.modules:
            return                      # outside the release: external
        exports = exports_of(callee)
        if exports is None or fa in exports:
            return
        reported.add(key)
        if fa in exports_removed.get(callee, ()):
            out.add("export_removed_still_called", caller, f"{callee}:{fa}",
                    f"{callee}:{fa} is no longer exported but {caller} "
                    f"({changes[caller].status}) still calls it: undef after the upgrade",
                    location=c.new_path, app=c.new_app)
        else:
            out.add("undef_after_upgrade", caller, f"{callee}:{fa}",
                    f"{caller} calls {callee}:{fa}, which the new release does not export: "
                    "the call raises undef", location=c.new_path, app=c.new_app)

    # Added and changed callers: all their calls into changed code, new calls elsewhere.
    for caller in sorted(moving):
        fn_new = facts_new[caller]
        old_calls = set(facts_old[caller].imports) if caller in facts_old else set()
        for (m, f, a) in fn_new.imports:
            if m in moving or m in removed_modules or (m, f, a) not in old_calls:
                check_call(caller, m, f, a, (m, f, a) not in old_calls)

    # Unchanged callers: only calls into modules that lost exports or were removed.
    targets = {n for n, s in exports_removed.items() if s} | removed_modules
    targets -= external
    if targets:
        encoded = [t.encode("utf-8") for t in sorted(targets)]
        for caller, c in changes.items():
            if c.status != "unchanged" or caller in external:
                continue
            src = new.modules[caller]
            if not _mentions(src, encoded, atom_text):
                continue
            f = facts_new.get(caller) or read_facts(src)
            if f is None:
                continue
            facts_new[caller] = f
            for (m, fn, a) in f.imports:
                if m in targets:
                    check_call(caller, m, fn, a, False)

    if restarted:
        _restart_window(old, new, changes, facts_old, facts_new, exports_of, external,
                        restarted, out)

    # Load order: new calls into modules changed or added in the same upgrade.
    dep_mods: dict[str, set] = {}
    for caller in sorted(moving):
        c = changes[caller]
        old_calls = set(facts_old[caller].imports) if caller in facts_old else set()
        for (m, f, a) in facts_new[caller].imports:
            if m == caller or m not in moving or m in external:
                continue
            if (m, f, a) in old_calls:
                continue
            if changes[m].new_app in restarted:
                continue            # the restart on the new emulator starts it new
            fa = f"{f}/{a}"
            exports = exports_of(m)
            if exports is None or fa not in exports:
                continue            # undefined: reported above, no order helps
            callee = changes[m]
            fresh = callee.status == "added" or (
                callee.report is not None and fa in callee.report.diff.exports_added)
            if c.new_app in restarted:
                # The restart starts the new caller beside the old callee: no DepMods
                # orders that, and only a function the old callee lacks fails.
                if fresh:
                    what = (f"module {m} is added by the upgrade" if callee.status == "added"
                            else f"only the new {m} exports {fa}")
                    out.add("restart_window_undef", caller, f"{m}:{fa}",
                            f"the new {caller} ({c.new_app}) calls {m}:{fa}, but "
                            f"{what}: the restart on the new emulator starts the new "
                            f"{c.new_app} beside the old release's {callee.new_app}, so "
                            f"the call raises undef until the upgrade loads the new {m}",
                            location=c.new_path, app=c.new_app)
                continue
            dep_mods.setdefault(caller, set()).add(m)
            if fresh:
                msg = (f"{caller} newly calls {m}:{fa}, which exists only in the new "
                       f"{m}: load {m} before {caller} (DepMods [{m}])")
                sev = None
            else:
                msg = (f"{caller} newly calls {m}:{fa} and {m} changes in the same "
                       f"upgrade: load {m} before {caller} (DepMods [{m}])")
                sev = "info"
            out.add("load_order", caller, f"{m}:{fa}", msg, location=c.new_path,
                    app=c.new_app, severity=sev)
    return {k: sorted(v) for k, v in sorted(dep_mods.items())}


def _restart_window(old: Release, new: Release, changes: dict, facts_old: dict,
                    facts_new: dict, exports_of, external: set, restarted: frozenset,
                    out: _Findings) -> None:
    """Old modules the restart on the new emulator runs beside the new ``restarted``
    applications that call a function those no longer have.  The caller's new version
    replaces it later in the upgrade; a caller that keeps the call, or does not change,
    has its finding from the checks of the new release already."""
    gone: dict[str, frozenset | None] = {}      # core module -> exports, None: removed
    for name, src in old.modules.items():
        if src.app not in restarted or name in external:
            continue
        if name not in new.modules:
            gone[name] = None
        else:
            ch = changes[name]
            if ch.report is not None and ch.report.diff.exports_removed:
                gone[name] = exports_of(name)
    if not gone:
        return
    encoded = [t.encode("utf-8") for t in sorted(gone)]
    for caller, src in sorted(old.modules.items()):
        ch = changes[caller]
        if src.app in restarted or caller in external or ch.status == "unchanged" \
                or ch.error is not None:
            continue
        f_old = facts_old.get(caller)
        if f_old is None:
            if not _mentions(src, encoded):
                continue
            f_old = read_facts(src)
            if f_old is None:
                continue
        still = set(facts_new[caller].imports) if caller in facts_new else set()
        for (m, f, a) in f_old.imports:
            if m not in gone or (m, f, a) in still:
                continue
            fa = f"{f}/{a}"
            exports = gone[m]
            if exports is not None and fa in exports:
                continue
            app = old.modules[m].app
            lost = (f"has no module {m}" if exports is None
                    else f"no longer exports {m}:{fa}")
            later = ("the upgrade removes it" if ch.status == "removed"
                     else "the upgrade loads its new version, which no longer calls it")
            out.add("restart_window_undef", caller, f"{m}:{fa}",
                    f"the old {caller} ({src.app}) calls {m}:{fa}, and the new {app} "
                    f"{lost}: the restart on the new emulator runs the old {caller} beside "
                    f"the new {app}, so the call raises undef until {later}",
                    location=src.path, app=src.app)


def _protocol_impls(src) -> frozenset | None:
    """The implementations a consolidated Elixir protocol module dispatches to (the
    ``{consolidated, [Module...]}`` its ``__protocol__(:impls)`` returns), or None."""
    if src is None:
        return None
    try:
        m = _module.load(src.read(), file=src.path)
        fn = next((f for f in m.functions if f.mfa == "__protocol__/1"), None)
    except (BeamError, OSError):
        return None
    for ins in fn.instructions if fn is not None else ():
        for v in ins.values:
            if isinstance(v, Literal):
                v = v.value
            if isinstance(v, tuple) and len(v) == 2 and v[0] == "consolidated" \
                    and isinstance(v[1], list):
                return frozenset(str(x) for x in v[1])
    return None


def _protocols(old: Release, new: Release, changes: dict, out: _Findings) -> None:
    """A consolidated protocol (a mix release's ``releases/VSN/consolidated``) whose
    implementations change: every call through it dispatches with the new table."""
    for ch in changes.values():
        if ch.status != "changed" or "/consolidated/" not in (ch.new_path or ""):
            continue
        a = _protocol_impls(old.modules.get(ch.name))
        b = _protocol_impls(new.modules.get(ch.name))
        if a is None or b is None:
            continue
        added, removed = sorted(b - a), sorted(a - b)
        what = "; ".join(x for x in (f"added {', '.join(added)}" if added else "",
                                     f"removed {', '.join(removed)}" if removed else "") if x)
        out.add("protocol_dispatch_changed", ch.name, None,
                f"the consolidated protocol {ch.name} changes its implementations "
                f"({what or 'the same ones, recompiled'}): once it is loaded, every call "
                "through it dispatches with the new table; a type whose implementation is "
                "added needs that module loaded first (load it before the protocol), one "
                "whose implementation is removed raises Protocol.UndefinedError",
                location=ch.new_path, severity="warning" if removed else None)


def _release_level(old: Release, new: Release, changes: dict, out: _Findings) -> None:
    for ch in changes.values():
        if ch.old_app is not None and ch.new_app is not None and ch.old_app != ch.new_app \
                and ch.status != "removed":
            out.add("module_moved_app", ch.name, None,
                    f"{ch.name} moved from application {ch.old_app} to {ch.new_app}: both "
                    "appups must agree (delete_module in one, add_module in the other) and "
                    "the module is unavailable between the two steps",
                    location=ch.new_path, app=ch.new_app)
    for label, rel in (("new", new), ("old", old)):
        for mod, srcs in rel.duplicates:
            out.add("duplicate_module", mod, None,
                    f"module {mod} appears {len(srcs)} times in the {label} release: "
                    + ", ".join(s.path for s in srcs) + f"; {srcs[0].path} is used",
                    location=srcs[0].path, app=srcs[0].app)
    for w in new.warnings:
        if w.kind in ("duplicate_module", "bad_appup"):
            continue        # reported as duplicate_module / appup_malformed
        out.add("release_warning", None, None, f"new release: {w}", location=w.path)
    # Applications whose modules changed but whose version stayed.
    touched: dict[str, list] = {}
    for ch in changes.values():
        if ch.status in ("added", "removed", "changed") and ch.error is None:
            for app in {ch.old_app, ch.new_app} - {None}:
                touched.setdefault(app, []).append(ch.name)
    for app, mods in sorted(touched.items()):
        a, b = old.apps.get(app), new.apps.get(app)
        if a is not None and b is not None and a.vsn == b.vsn:
            out.add("app_vsn_not_bumped", None, None,
                    f"application {app} stays at version {b.vsn} although "
                    f"{len(mods)} module(s) changed ({', '.join(sorted(mods)[:5])}"
                    f"{', ...' if len(mods) > 5 else ''}): a release upgrade does not touch it",
                    location=b.app_file_path or b.path, app=app)
