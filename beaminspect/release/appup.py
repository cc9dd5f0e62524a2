"""Application upgrade files: checking the new release's ``.appup`` files against what
the comparison found, and writing suggested ones.

An appup is one term ``{Vsn, [{UpFrom, Instructions}], [{DownTo, Instructions}]}``.
``UpFrom``/``DownTo`` is a version string or a binary holding a regular expression that
must match the whole old version (``systools_relup`` runs ``re:run(Vsn, Regex,
[unicode, {capture, first, list}])`` and requires the match to be all of ``Vsn``).

High-level instructions understood here: ``load_module``, ``update``, ``add_module``,
``delete_module`` (every documented arity), ``restart_application``; low-level
``load``, ``load_object_code`` and ``remove`` count as present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from beaminspect.analysis.findings import KINDS, Finding
from beaminspect.errors import format_error
from beaminspect.release.emulator import RESTART_TAKES_NEW
from beaminspect.release.facts import read_facts
from beaminspect.terms.source import as_text, dump_terms
from beaminspect.terms import Atom

__all__ = ["Instruction", "parse_instructions", "version_matches", "check_appups",
           "settled_by_appups", "shipped_up_instructions", "suggest_appups",
           "suggest_appup_text"]

PURGE_KILLS = ("purge_kills_local_loop", "purge_kills_idle_external_loop",
               "purge_kills_blocked_call")
GEN_BEHAVIOURS = ("gen_server", "gen_statem", "gen_event")
PURGES = ("soft_purge", "brutal_purge")


@dataclass(frozen=True)
class Instruction:
    """One appup instruction as far as the checks care: ``op`` is load_module, update,
    add_module, delete_module, load (low-level), remove (low-level)."""

    op: str
    module: str
    change: object = "soft"            # update: soft or ("advanced", Extra); supervisor
    pre_purge: str = "brutal_purge"
    post_purge: str = "brutal_purge"
    dep_mods: tuple = ()


def _atom(x) -> str | None:
    return str(x) if isinstance(x, Atom) else None


def _deps(x) -> tuple | None:
    if isinstance(x, list) and all(isinstance(m, Atom) for m in x):
        return tuple(str(m) for m in x)
    return None


def _is_change(x) -> bool:
    return x == "soft" and isinstance(x, Atom) or (
        isinstance(x, tuple) and len(x) == 2 and x[0] == "advanced")


def _parse_one(ins) -> tuple[list[Instruction], list[str], str | None]:
    """-> (instructions, applications restarted, problem)"""
    if not isinstance(ins, tuple) or not ins or not isinstance(ins[0], Atom):
        return [], [], None          # point_of_no_return, restart_new_emulator...
    op, args = str(ins[0]), ins[1:]
    mod = _atom(args[0]) if args else None
    if op == "load_module":
        if mod is None:
            return [], [], f"{op}: the module must be an atom"
        if len(args) == 1:
            return [Instruction(op, mod)], [], None
        if len(args) == 2 and _deps(args[1]) is not None:
            return [Instruction(op, mod, dep_mods=_deps(args[1]))], [], None
        if len(args) == 4 and args[1] in PURGES and args[2] in PURGES and \
                _deps(args[3]) is not None:
            return [Instruction(op, mod, "soft", str(args[1]), str(args[2]),
                                _deps(args[3]))], [], None
        return [], [], f"malformed load_module instruction for {mod}"
    if op == "update":
        if mod is None:
            return [], [], f"{op}: the module must be an atom"
        rest = list(args[1:])
        change, pre, post, deps = "soft", "brutal_purge", "brutal_purge", ()
        if rest == ["supervisor"]:
            return [Instruction(op, mod, "supervisor")], [], None
        if rest and _deps(rest[-1]) is not None:
            deps = _deps(rest.pop())
        if len(rest) >= 2 and rest[-1] in PURGES and rest[-2] in PURGES:
            post = str(rest.pop())
            pre = str(rest.pop())
        if rest and _is_change(rest[-1]):
            c = rest.pop()
            change = ("advanced", c[1]) if isinstance(c, tuple) else "soft"
        # what may remain: Timeout (int, default, infinity), ModType (static, dynamic)
        if len(rest) > 2:
            return [], [], f"malformed update instruction for {mod}"
        return [Instruction(op, mod, change, pre, post, deps)], [], None
    if op in ("add_module", "delete_module"):
        if mod is None:
            return [], [], f"{op}: the module must be an atom"
        if len(args) == 1 or (len(args) == 2 and _deps(args[1]) is not None):
            return [Instruction(op, mod, dep_mods=_deps(args[1]) if len(args) == 2 else ())
                    ], [], None
        return [], [], f"malformed {op} instruction for {mod}"
    if op == "restart_application" and mod is not None:
        return [], [mod], None
    if op in ("load", "remove") and len(args) == 1 and isinstance(args[0], tuple) \
            and args[0] and _atom(args[0][0]):
        return [Instruction(op, _atom(args[0][0]))], [], None
    if op == "load_object_code" and len(args) == 1 and isinstance(args[0], tuple) \
            and len(args[0]) == 3 and isinstance(args[0][2], list):
        return [Instruction("load", str(m)) for m in args[0][2] if isinstance(m, Atom)], [], None
    return [], [], None


def _restarts(app: str, restarted: list, instrs) -> bool:
    """Does ``app`` start over with its new code, so that its modules need no
    instructions: ``restart_application``, or ``restart_new_emulator`` for an
    application the restart takes from the new release (erts, kernel, stdlib, sasl)?"""
    return app in restarted or (
        app in RESTART_TAKES_NEW and isinstance(instrs, list)
        and any(isinstance(i, Atom) and i == "restart_new_emulator" for i in instrs))


def parse_instructions(instrs) -> tuple[list[Instruction], list[str], list[str]]:
    """-> (instructions, restarted applications, problems)."""
    out, apps, problems = [], [], []
    if not isinstance(instrs, list):
        return out, apps, ["the instructions are not a list"]
    for ins in instrs:
        i, a, p = _parse_one(ins)
        out += i
        apps += a
        if p:
            problems.append(p)
    return out, apps, problems


def version_matches(spec, vsn: str) -> bool:
    """Does an UpFrom/DownTo entry match ``vsn``?  Raises ``re.error`` for a bad regex."""
    if isinstance(spec, (bytes, bytearray)):
        pattern = bytes(spec).decode("utf-8", "replace")
        m = re.search(pattern, vsn)
        return m is not None and m.group(0) == vsn
    text = as_text(spec)
    return text is not None and text == vsn


def _shape(appup) -> tuple | None:
    if not isinstance(appup, list) or len(appup) != 1:
        return None
    t = appup[0]
    if not (isinstance(t, tuple) and len(t) == 3 and isinstance(t[1], list)
            and isinstance(t[2], list)):
        return None
    for entries in (t[1], t[2]):
        for e in entries:
            if not (isinstance(e, tuple) and len(e) == 2 and isinstance(e[1], list)):
                return None
    return t


def _find_entry(entries, vsn):
    for spec, instrs in entries:
        if version_matches(spec, vsn):
            return spec, instrs
    return None


# ---------------------------------------------------------------------------
# Checks


def _cc_arity(behaviours) -> int:
    return 4 if "gen_statem" in behaviours else 3


def module_needs(ch) -> dict:
    """What the analysis says a changed module needs from an appup."""
    r = ch.report
    kills = bool(r is not None and any(f.kind in PURGE_KILLS for f in r.findings))
    return {"kills": kills, "state_changed": bool(getattr(ch, "state_changed", False))}


def check_appups(report) -> list:
    """Findings about the new release's appup files (with the default severities; the
    caller applies the policy)."""
    out: list = []

    def add(kind, app, message, location, module=None, function=None, severity=None):
        out.append(Finding(kind, severity or KINDS[kind].severity, function, message, module,
                           location, app))

    old, new = report.old, report.new
    for name, info in sorted(new.apps.items()):
        if info.appup_error is not None:
            add("appup_malformed", name, format_error(info.appup_error), info.appup_path)
    for name, info in sorted(new.apps.items()):
        prev = old.apps.get(name)
        if prev is None or info.appup_error is not None:
            continue
        changes = [c for c in report.modules.values() if _concerns(c, name)]
        if prev.vsn == info.vsn:
            continue            # app_vsn_not_bumped covers changed modules here
        where = info.appup_path
        if info.appup is None and name == "erts":
            continue            # upgraded by its version in the .rel (a new emulator)
        if info.appup is None:
            add("appup_missing", name,
                f"application {name} goes from {prev.vsn} to {info.vsn} but has no "
                f"{name}.appup: release_handler cannot upgrade it",
                info.app_file_path or info.path)
            continue
        t = _shape(info.appup)
        if t is None:
            add("appup_malformed", name, f"{where}: not a single term "
                "{Vsn, [{UpFrom, Instructions}], [{DownTo, Instructions}]}", where)
            continue
        vsn = as_text(t[0])
        if vsn != info.vsn:
            add("appup_wrong_vsn", name,
                f"the appup is for version {vsn if vsn is not None else t[0]!r}, the "
                f"application is {info.vsn}", where)
        entries = {}
        for label, kind, lst in (("UpFrom", "appup_no_upfrom", t[1]),
                                 ("DownTo", "appup_no_downto", t[2])):
            try:
                found = _find_entry(lst, prev.vsn)
            except re.error as e:
                add("appup_malformed", name, f"{where}: a {label} regular expression is "
                    f"invalid: {e}", where)
                found = ()
            if found is None:
                add(kind, name, f"no {label} entry matches the old version {prev.vsn} "
                    f"(entries: {', '.join(_spec_text(s) for s, _ in lst) or 'none'})", where)
            entries[label] = found or None
        down = entries.get("DownTo")
        if down:
            dinstrs, drestarted, dproblems = parse_instructions(down[1])
            for p in dproblems:
                add("appup_malformed", name, f"{where}: DownTo {_spec_text(down[0])}: {p}",
                    where)
            if not _restarts(name, drestarted, down[1]):
                _check_down(name, prev, changes, dinstrs, where, add)
        up = entries.get("UpFrom")
        if not up:
            continue
        instrs, restarted, problems = parse_instructions(up[1])
        for p in problems:
            add("appup_malformed", name, f"{where}: UpFrom {_spec_text(up[0])}: {p}", where)
        if _restarts(name, restarted, up[1]):
            continue            # the whole application restarts with new code
        _check_instructions(report, name, info, prev, changes, instrs, where, add)
    return out


def _check_down(app, prev, changes, instrs, where, add) -> None:
    """The DownTo instructions undo the upgrade: each changed module loaded back, each
    added one deleted, each removed one added back.  A warning, not an error: it matters
    when the upgrade is rolled back.  An empty DownTo list is one finding."""
    touched = [c for c in changes if c.status in ("changed", "added", "removed")
               and c.error is None]
    if not instrs:
        if touched:
            add("appup_missing_module", app,
                f"the DownTo {prev.vsn} entry has no instructions: a downgrade to "
                f"{prev.vsn} leaves the {len(touched)} module(s) the upgrade changes, adds "
                "or removes as they are", where, severity="warning")
        return
    ops: dict[str, set] = {}
    for i in instrs:
        ops.setdefault(i.module, set()).add(i.op)
    for ch in sorted(changes, key=lambda c: c.name):
        got = ops.get(ch.name, set())
        if ch.status == "changed" and ch.error is None:
            need, fix = {"load_module", "update", "load"}, f"{{load_module, {ch.name}}}"
        elif ch.status == "added":
            need, fix = {"delete_module", "remove"}, f"{{delete_module, {ch.name}}}"
        elif ch.status == "removed":
            need, fix = {"add_module", "load", "load_module"}, f"{{add_module, {ch.name}}}"
        else:
            continue
        if not got & need:
            add("appup_missing_module", app,
                f"the DownTo {prev.vsn} instructions do not undo the upgrade of {ch.name} "
                f"({ch.status}): a downgrade leaves it as the upgrade made it; add {fix}",
                where, ch.name, severity="warning")


def shipped_up_instructions(report) -> dict:
    """``{app: [Instruction...]}``: the UpFrom instructions for the old version of each
    application whose shipped appup has them (applications it restarts left out)."""
    out = {}
    old, new = report.old, report.new
    for name, info in new.apps.items():
        prev = old.apps.get(name)
        t = _shape(info.appup) if info.appup is not None else None
        if prev is None or t is None or prev.vsn is None:
            continue
        try:
            up = _find_entry(t[1], prev.vsn)
        except re.error:
            continue
        if up is None:
            continue
        instrs, restarted, _problems = parse_instructions(up[1])
        if not _restarts(name, restarted, up[1]):
            out[name] = instrs
    return out


def settled_by_appups(report, findings: list) -> list:
    """``findings`` with those that the shipped appups take care of at info, saying how:
    a load order their DepMods (or instruction order) gives, processes their
    ``soft_purge`` does not kill at this upgrade, a state their ``{update, M, {advanced,
    Extra}}`` converts through code_change.  Nothing else changes."""
    import dataclasses
    shipped = shipped_up_instructions(report)
    if not shipped:
        return findings
    where: dict[str, tuple[str, int, Instruction]] = {}
    for app, instrs in shipped.items():
        for n, i in enumerate(instrs):
            where.setdefault(i.module, (app, n, i))
    out = []
    for f in findings:
        how = _settled(f, where)
        if how is not None and f.severity != "info":
            f = dataclasses.replace(f, severity="info",
                                    message=f"settled by the appup ({how}): {f.message}")
        out.append(f)
    return out


def _settled(f, where: dict) -> str | None:
    mod = f.module
    if mod is None or mod not in where:
        return None
    app, pos, ins = where[mod]
    if f.kind == "load_order" and f.function:
        callee = f.function.split(":", 1)[0]
        if callee in ins.dep_mods:
            return f"{mod}'s DepMods name {callee}"
        other = where.get(callee)
        if other is not None and other[0] == app and other[1] < pos:
            return f"it loads {callee} before {mod}"
        return None
    if f.kind in PURGE_KILLS:
        if ins.op in ("load_module", "update") and ins.pre_purge == "soft_purge" \
                and ins.post_purge == "soft_purge":
            return ("soft_purge: this upgrade does not kill them, but they stay on the old "
                    f"code; while they do, the next upgrade of {mod} stops with "
                    f"{{error, {{old_processes, {mod}}}}} (soft_purge) or kills them "
                    "(brutal_purge)")
        return None
    if f.kind == "code_change_needs_advanced_update":
        if ins.op == "update" and isinstance(ins.change, tuple):
            return f"{{update, {mod}, {{advanced, ...}}}} runs code_change"
    return None


def _concerns(ch, app: str) -> bool:
    return ch.new_app == app or (ch.status == "removed" and ch.old_app == app)


def _spec_text(spec) -> str:
    if isinstance(spec, (bytes, bytearray)):
        return "<<\"" + bytes(spec).decode("utf-8", "replace") + "\">>"
    t = as_text(spec)
    return f'"{t}"' if t is not None else repr(spec)


def _check_instructions(report, app, info, prev, changes, instrs, where, add) -> None:
    by_mod: dict[str, list[Instruction]] = {}
    for i in instrs:
        by_mod.setdefault(i.module, []).append(i)
    for ch in sorted(changes, key=lambda c: c.name):
        got = by_mod.get(ch.name, [])
        ops = {i.op for i in got}
        if ch.status == "changed" and ch.error is None:
            if not ops & {"load_module", "update", "load", "add_module"}:
                add("appup_missing_module", app,
                    f"{ch.name} changed but the UpFrom {prev.vsn} instructions neither "
                    f"load nor update it: add {{load_module, {ch.name}}}", where, ch.name)
                continue
            needs = module_needs(ch)
            loads = [i for i in got if i.op == "load_module"]
            if needs["kills"] and any(i.pre_purge == "brutal_purge" or
                                      i.post_purge == "brutal_purge" for i in loads):
                kills = [f.function for f in ch.report.findings if f.kind in PURGE_KILLS]
                add("appup_brutal_purge_kills", app,
                    f"{{load_module, {ch.name}}} purges brutally but processes in "
                    f"{', '.join(k for k in kills if k) or 'old code'} would be killed: use "
                    "soft_purge or an update instruction", where, ch.name)
            facts = report.facts_new.get(ch.name)
            has_cc = facts is not None and \
                f"code_change/{_cc_arity(facts.behaviours)}" in facts.exports
            # Without code_change the module itself is the problem (hotload's
            # state_change_without_code_change), not the appup.
            if needs["state_changed"] and has_cc and not any(
                    i.op == "update" and isinstance(i.change, tuple) for i in got):
                add("appup_update_needed", app,
                    f"{ch.name} is a behaviour module whose state changed: reloading it with "
                    f"load_module skips code_change; use {{update, {ch.name}, {{advanced, []}}}}",
                    where, ch.name)
        elif ch.status == "added" or (ch.status == "unchanged" and ch.old_app != app
                                      and ch.new_app == app):
            if not ops & {"add_module", "load", "load_module"}:
                add("appup_missing_module", app,
                    f"{ch.name} is new in {app} {info.vsn} but the UpFrom {prev.vsn} "
                    f"instructions do not add it: add {{add_module, {ch.name}}}", where, ch.name)
        elif ch.status == "removed":
            if not ops & {"delete_module", "remove"}:
                add("appup_missing_module", app,
                    f"{ch.name} is gone from {app} {info.vsn} but the UpFrom {prev.vsn} "
                    f"instructions do not delete it: add {{delete_module, {ch.name}}}",
                    where, ch.name)
    known = set(info.modules) | {c.name for c in changes if c.status == "removed"}
    for mod, got in sorted(by_mod.items()):
        if mod not in known:
            add("appup_unknown_module", app,
                f"the UpFrom {prev.vsn} instructions name {mod}, which is not a module of "
                f"{app} {info.vsn}", where, mod)
        for i in got:
            if i.op == "update" and isinstance(i.change, tuple):
                facts = report.facts_new.get(mod)
                if facts is None:
                    facts = _facts(report, mod)
                if facts is None:
                    continue
                ar = _cc_arity(facts.behaviours)
                if f"code_change/{ar}" not in facts.exports:
                    add("appup_advanced_without_code_change", app,
                        f"{{update, {mod}, {{advanced, ...}}}} calls {mod}:code_change/{ar}, "
                        "which is not exported: the upgrade fails when the process is "
                        "suspended for the code change", where, mod,
                        f"{mod}:code_change/{ar}")


def _facts(report, mod):
    src = report.new.modules.get(mod)
    if src is None:
        return None
    f = read_facts(src)
    if f is not None:
        report.facts_new[mod] = f
    return f


# ---------------------------------------------------------------------------
# Suggestions


def _order(mods: list[str], dep_mods: dict) -> list[str]:
    """Callees before callers (stable: alphabetical where no dependency decides)."""
    todo = sorted(mods)
    inset = set(todo)
    done: list[str] = []
    seen: set = set()
    visiting: set = set()

    def visit(m):
        if m in seen or m in visiting:
            return
        visiting.add(m)
        for d in dep_mods.get(m, ()):
            if d in inset:
                visit(d)
        visiting.discard(m)
        seen.add(m)
        done.append(m)

    for m in todo:
        visit(m)
    return done


def _instruction_for(report, ch, deps: list[str]):
    m = Atom(ch.name)
    dep_atoms = [Atom(d) for d in deps]
    facts = report.facts_new.get(ch.name)
    behaviours = facts.behaviours if facts is not None else ()
    needs = module_needs(ch)
    if "supervisor" in behaviours:
        return (Atom("update"), m, Atom("supervisor"))
    has_cc = facts is not None and f"code_change/{_cc_arity(behaviours)}" in facts.exports
    if set(behaviours) & set(GEN_BEHAVIOURS) and has_cc and (
            needs["state_changed"] or "vsn" in ch.report.diff.attributes):
        if dep_atoms:
            return (Atom("update"), m, (Atom("advanced"), []), dep_atoms)
        return (Atom("update"), m, (Atom("advanced"), []))
    if needs["kills"]:
        return (Atom("load_module"), m, Atom("soft_purge"), Atom("soft_purge"), dep_atoms)
    if dep_atoms:
        return (Atom("load_module"), m, dep_atoms)
    return (Atom("load_module"), m)


def suggest_appups(report, app: str | None = None) -> dict:
    """``{app: appup term}`` for every application present in both releases whose
    version or modules changed (only ``app`` when given).  On an emulator change, kernel,
    stdlib and sasl get ``restart_new_emulator`` and erts none."""
    out = {}
    for name, info in sorted(report.new.apps.items()):
        prev = report.old.apps.get(name)
        if prev is None or (app is not None and name != app):
            continue
        changes = [c for c in report.modules.values() if _concerns(c, name)]
        changed = [c for c in changes if c.status == "changed" and c.report is not None]
        added = [c.name for c in changes if c.status == "added" or
                 (c.status == "unchanged" and c.old_app != name)]
        removed = [c.name for c in changes if c.status == "removed"]
        if prev.vsn == info.vsn and not (changed or added or removed):
            continue
        if name in report.restarted:
            # The restart on the new emulator starts this application's new version
            # (erts comes with the emulator and has no appup), as OTP's own appups say.
            if name != "erts":
                restart = [Atom("restart_new_emulator")]
                out[name] = (info.vsn or "", [(prev.vsn or "", restart)],
                             [(prev.vsn or "", restart)])
            continue
        in_step = {c.name for c in changed} | set(added)
        deps = {m: [d for d in report.dep_mods.get(m, []) if d in in_step]
                for m in in_step}
        by_name = {c.name: c for c in changed}
        up, down = [], []
        for m in _order(added, deps):
            up.append((Atom("add_module"), Atom(m)))
            down.append((Atom("delete_module"), Atom(m)))
        for m in _order(list(by_name), deps):
            ins = _instruction_for(report, by_name[m], deps.get(m, []))
            up.append(ins)
            down.append(ins)
        for m in sorted(removed):
            up.append((Atom("delete_module"), Atom(m)))
            down.append((Atom("add_module"), Atom(m)))
        old_vsn = prev.vsn or ""
        out[name] = (info.vsn or "", [(old_vsn, up)], [(old_vsn, list(reversed(down)))])
    return out


def suggest_appup_text(term) -> str:
    return ("%% Suggested by beaminspect from the comparison of the two releases;\n"
            "%% review before use.\n" + dump_terms([term]))
