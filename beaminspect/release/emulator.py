"""An upgrade that changes the emulator: OLD and NEW run on different ERTS versions.

The ERTS version of a release is its ``.rel`` file's ``{erts, Vsn}``, or, for an OTP
lib tree or a ``_build`` tree without one, the version of the ``erts`` application it
holds.  When the two differ, ``systools:make_relup`` starts the relup with
``restart_new_emulator``: the node restarts on the new emulator with the *new* ERTS,
kernel, stdlib and sasl and the *old* release's other applications (release_handler's
temporary release), and then upgrades those.  So every process restarts (the hot-load
predictions are about the processes the restart starts), and every module of the
running release's other applications must load on the new emulator: one its loader
refuses stops the restart.  (The old erts, kernel, stdlib and sasl modules are not
loaded there.)  Which OTP release the new emulator belongs to comes from the ERTS major
version (ERTS 13 is OTP 25, ... ERTS 17 is OTP 29), or is given (``--target-otp``);
the old release's modules are then checked against that release's loader
(:mod:`beaminspect.loader.check`).
"""

from __future__ import annotations

import re

from beaminspect.analysis.findings import KINDS, Finding
from beaminspect.errors import BeamError
from beaminspect.gcpause import paused_gc
from beaminspect.loader.check import check_bytes
from beaminspect.otp import RELEASES, release_of_erts
from beaminspect.release.layout import Release

__all__ = ["erts_version", "new_emulator_release", "emulator_changes", "check_emulator",
           "RESTART_TAKES_NEW", "HOT_LOAD_KINDS", "module_emulator_findings"]


def erts_version(rel: Release) -> str | None:
    """The ERTS version ``rel`` runs on: its current ``.rel``'s, else its ``erts``
    application's; None when neither says."""
    if rel.current_rel is not None and rel.current_rel.erts_vsn:
        return rel.current_rel.erts_vsn
    erts = rel.apps.get("erts")
    return erts.vsn if erts is not None else None


def _major(vsn: str | None) -> int | None:
    m = re.match(r"(\d+)", vsn or "")
    return int(m.group(1)) if m else None


def new_emulator_release(old: Release, new: Release,
                         target_otp: int | None = None) -> int | None:
    """The OTP release of the emulator the upgrade moves to (``target_otp``, else told by
    the new release's ERTS when it differs from the old one's), or None when the
    emulator does not change as far as the files tell."""
    if target_otp is not None:
        return target_otp
    a, b = erts_version(old), erts_version(new)
    if a is None or b is None or a == b:
        return None
    return release_of_erts(_major(b))


#: The applications the restart on the new emulator takes from the new release
#: (release_handler: ``new_emulator_make_tmp_release``; erts's own modules come with
#: the emulator).
RESTART_TAKES_NEW = frozenset({"erts", "kernel", "stdlib", "sasl"})

#: The module finding kinds about hot-loading the module into running processes (the
#: purge, old code in loops and funs, state carried across code_change, a NIF library
#: or on_load run a second time, a supervisor's running children).  A module of the
#: applications in :data:`RESTART_TAKES_NEW` is not hot-loaded when the emulator
#: changes: the restart starts its new version fresh, so these do not apply to it.
HOT_LOAD_KINDS = frozenset({
    "purge_kills_local_loop", "purge_kills_idle_external_loop", "purge_kills_blocked_call",
    "stale_code_in_loop", "fun_invalidated", "fun_may_outlive_load",
    "state_change_without_code_change", "record_changed_outside_state",
    "code_change_needs_advanced_update", "callbacks_changed_without_code_change",
    "vsn_not_bumped", "nif_changed", "on_load_changed", "supervisor_children_changed",
})


def emulator_changes(old: Release, new: Release, target_otp: int | None = None,
                     running_otp: int | None = None) -> bool:
    """Does the upgrade move to another emulator: the two releases' ERTS versions
    differ, or ``target_otp`` is given and differs from ``running_otp``?"""
    a, b = erts_version(old), erts_version(new)
    return (a is not None and b is not None and a != b) or (
        target_otp is not None and running_otp is not None and target_otp != running_otp)


def _refusal(data: bytes, otp: int, name: str) -> str | None:
    """The reason OTP ``otp``'s loader gives for refusing ``data``, or None when it
    loads it (or the file cannot be read: that is reported elsewhere)."""
    try:
        v = check_bytes(data, otp, module_name=name, loader_only=True)
    except BeamError:
        return None
    return None if v.loads else v.reason


def check_emulator(old: Release, new: Release, out, target_otp: int | None = None,
                   running_otp: int | None = None, jobs: int | None = None) -> None:
    """Add ``new_emulator_needed`` and ``module_refused_by_new_emulator`` findings to
    ``out`` when the emulator changes (or ``target_otp`` differs from ``running_otp``).
    The old release's modules are checked on ``jobs`` processes (default: one per
    core)."""
    if not emulator_changes(old, new, target_otp, running_otp):
        return
    a, b = erts_version(old), erts_version(new)
    changes = a is not None and b is not None and a != b
    target = new_emulator_release(old, new, target_otp)
    where = new.current_rel.path if new.current_rel is not None else None
    if changes:
        rel_a, rel_b = release_of_erts(_major(a)), release_of_erts(_major(b))
        otps = (f" (OTP {rel_a} -> OTP {rel_b})" if rel_a and rel_b and rel_a != rel_b
                else "")
        out.add("new_emulator_needed", None, None,
                f"the release moves from ERTS {a} to ERTS {b}{otps}: the relup starts with "
                "restart_new_emulator, so the node restarts on the new emulator with the "
                "new kernel, stdlib and sasl and the old release's other applications, "
                "which must load there, and then upgrades those: every process restarts, "
                "and what this report predicts for running processes is about the ones "
                "the restart starts (erts, kernel, stdlib and sasl are not hot-loaded)",
                location=where)
    if target is None or target not in RELEASES:
        return
    from beaminspect.parallel import map_files
    items = sorted((name, src) for name, src in old.modules.items()
                   if src.app not in RESTART_TAKES_NEW)
    for (name, src), reason in zip(items, map_files(_refusal_job, items, (target,), jobs)):
        if reason is not None:
            out.add("module_refused_by_new_emulator", name, None,
                    f"{name} of the running release is refused by OTP {target}'s loader "
                    f"({reason}): the restart on the new emulator loads the old "
                    "release's modules first, and this one does not load",
                    location=src.path, app=src.app)


@paused_gc
def _refusal_job(item, target: int) -> str | None:
    """:func:`_refusal` of one ``(name, module source)`` of a release (a job of
    :func:`beaminspect.parallel.map_files`)."""
    name, src = item
    try:
        return _refusal(src.read(), target, name)
    except (BeamError, OSError):
        return None             # unreadable: reported as such elsewhere


def module_emulator_findings(old_data: bytes, new_data: bytes, name: str,
                             running_otp: int | None, target_otp: int) -> list:
    """``diff --target-otp``: the findings of one module's upgrade onto another
    emulator (``target_otp`` other than ``running_otp``): the node restarts, the old
    version must load on the target release (the restart loads it first) and so must
    the new one."""
    if running_otp is not None and running_otp == target_otp:
        return []
    out = [Finding("new_emulator_needed", KINDS["new_emulator_needed"].severity, None,
                   f"the upgrade moves to OTP {target_otp}'s emulator"
                   + (f" from OTP {running_otp}'s" if running_otp is not None else "")
                   + ": the relup restarts the node (restart_new_emulator) with the old "
                   "version first, then loads the new one: every process restarts, and "
                   "what this report predicts for running processes is about the ones the "
                   "restart starts")]
    for which, data in (("old", old_data), ("new", new_data)):
        reason = _refusal(data, target_otp, name)
        if reason is not None:
            out.append(Finding("module_refused_by_new_emulator",
                               KINDS["module_refused_by_new_emulator"].severity, None,
                               f"the {which} version of {name} is refused by OTP "
                               f"{target_otp}'s loader ({reason})"
                               + (": the restart on the new emulator loads the old "
                                  "version first, and it does not load" if which == "old"
                                  else ": the upgrade cannot load it")))
    return out
