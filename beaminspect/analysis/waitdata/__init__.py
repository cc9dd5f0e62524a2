"""Which exported functions of OTP's and Elixir's own modules wait, worked out beforehand.

``otpN.json`` in this package was written by tools/gen_waits.py: it reads every module
of OTP N's lib directory and of the Elixir that release ships (the releases
tests/otp.py runs: OTP 25 with Elixir 1.14, OTP 27 with 1.18, OTP 29 with 1.20) with
:class:`~beaminspect.analysis.waits.WaitIndex`, exactly as a release under analysis
is read, and records the answers by module MD5.  Each file records the OTP and Elixir
versions it was made from.

Layout: ``{"format": 1, "otp_release", "otp_version", "elixir_version", "modules":
{MD5: [module, [[function, arity, steps...], ...]]}}``, where each entry of the list
is an exported function that waits, followed by the calls of a shortest way to the wait
(``[module, function, arity]`` each) up to the first one into another module, or up to
the function of this module that waits; none when it waits itself.  A module listed
with an empty list has no exported function that waits.

:func:`settled` answers for a module only when its MD5 is listed: any other version
is read from its code.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

__all__ = ["settled", "releases", "load", "FORMAT"]

#: The version of the data files' layout (``"format"`` in each file).
FORMAT = 1


def releases() -> list[int]:
    """The OTP releases with a data file."""
    names = [p.name for p in resources.files(__package__).iterdir()]
    return sorted(int(n[3:-5]) for n in names if n.startswith("otp") and n.endswith(".json"))


def load(release: int) -> dict:
    """The data file of OTP ``release``, as read from JSON."""
    text = resources.files(__package__).joinpath(f"otp{release}.json").read_text("utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def _by_md5() -> dict:
    out = {}
    for release in releases():
        for md5, (module, waits) in load(release)["modules"].items():
            out[md5] = (module, waits)
    return out


def settled(module: str, md5: bytes) -> dict | None:
    """For a module version listed in a data file: (function, arity) of each exported
    function that waits -> the steps of its way to the wait (a tuple of (module,
    function, arity); empty when it waits itself); None when the version is not
    listed."""
    hit = _by_md5().get(md5.hex())
    if hit is None or hit[0] != module:
        return None
    return {(e[0], e[1]): tuple(tuple(step) for step in e[2:]) for e in hit[1]}
