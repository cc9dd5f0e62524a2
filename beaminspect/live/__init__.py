"""What runs on a node: a read-only snapshot taken through OTP's own distribution, and
the fate the hot-load model predicts for each process there.

    >>> from beaminspect import live
    >>> snap = live.snapshot("app@host", timeout=15)          # NodeSnapshot
    >>> snap.otp_release, len(snap.modules), len(snap.processes)

:func:`snapshot` (:mod:`~beaminspect.live.client`) runs OTP's ``erl`` as a hidden node
and asks the target with BIFs and OTP functions only; nothing is loaded, purged, sent
or changed there.  :func:`~beaminspect.live.predict.assess` compares the snapshot with
the static reports of an upgrade: drift, old code, and per process ``killed``,
``survives`` or ``at_risk`` with the reason.
"""

from beaminspect.live.client import snapshot
from beaminspect.live.model import LoadedModule, NodeSnapshot, ProcessInfo
from beaminspect.live.predict import LiveAssessment, ProcessFate, assess

__all__ = ["snapshot", "NodeSnapshot", "LoadedModule", "ProcessInfo", "assess",
           "LiveAssessment", "ProcessFate"]
