"""Per-release facts: what differs between the Erlang/OTP releases beaminspect models.

One place for them, so that a new release is added here (and in the generated tables
it names) rather than in each consumer:

* :data:`MAX_OPCODE_BY_RELEASE`: the highest opcode each release's compiler emits and
  its loader takes (generated into :mod:`beaminspect.format.opcodes` from genop.tab by
  tools/gen_opcodes.py, re-exported here);
* :data:`TYPE_VERSION_BY_RELEASE`: the Type chunk version each release writes, and
  :data:`TYPE_VERSIONS_READ_BY_RELEASE` those its loader reads;
* :data:`KNOWN_FEATURES` / :data:`DEFAULT_FEATURES`: the features each release knows
  and those its runtime enables without ``-enable-feature``;
* :data:`RELEASES`: the releases modelled (``check --otp N`` takes these);
  :data:`MEASURED_RELEASES`: those whose loader rules were measured on the release's
  own VM (beaminspect/loader/rules/otpN.json, tools/gen_loader_rules.py); the others
  are modelled from the sources (reader checks and line checks only);
* :func:`validate_release`: the one check of a release number a front end makes.
"""

from __future__ import annotations

from beaminspect.format.opcodes import MAX_OPCODE_BY_RELEASE

__all__ = ["MAX_OPCODE_BY_RELEASE", "TYPE_VERSION_BY_RELEASE", "TYPE_VERSIONS_READ_BY_RELEASE",
           "KNOWN_FEATURES",
           "DEFAULT_FEATURES", "RELEASES", "OLDEST", "NEWEST", "MEASURED_RELEASES",
           "LITT_UNCOMPRESSED_SINCE", "LONG_ATOM_COUNTS_SINCE", "MIN_OPCODE_CHECK_SINCE",
           "max_opcode", "validate_release"]

#: The oldest and newest releases modelled.
OLDEST, NEWEST = 25, 29
RELEASES: tuple[int, ...] = tuple(range(OLDEST, NEWEST + 1))

#: Releases whose loader rules were measured with erlang:prepare_loading/2 on the
#: release's own VM (one data file each in beaminspect/loader/rules/).
MEASURED_RELEASES: frozenset[int] = frozenset({25, 27, 29})

#: The Type chunk version each release's compiler writes.
TYPE_VERSION_BY_RELEASE: dict[int, int] = {25: 1, 26: 2, 27: 3, 28: 3, 29: 4}
#: The Type chunk versions each release's loader reads (others are ignored): OTP 29
#: still reads version 3 (measured: a version-3 table whose first entry is not "any"
#: is a "corrupt type table" on OTP 29, ignored on OTP 27 relabelled as version 2).
TYPE_VERSIONS_READ_BY_RELEASE: dict[int, frozenset[int]] = {
    n: frozenset({v}) for n, v in TYPE_VERSION_BY_RELEASE.items()} | {29: frozenset({3, 4})}

#: Features each release knows, and those its runtime enables without
#: ``-enable-feature`` (erl_features in stdlib).
KNOWN_FEATURES: dict[int, set[str]] = {25: {"maybe_expr"}, 26: {"maybe_expr"},
                                       27: {"maybe_expr"}, 28: {"maybe_expr"},
                                       29: {"maybe_expr"}}
DEFAULT_FEATURES: dict[int, set[str]] = {25: set(), 26: set(), 27: {"maybe_expr"},
                                         28: {"maybe_expr"}, 29: {"maybe_expr"}}

#: From this release on, the compiler may write LitT with a leading size 0 and the
#: table uncompressed (the loader takes both forms).
LITT_UNCOMPRESSED_SINCE = 28
#: From this release on, a negative AtU8 count announces compact-encoded atom lengths.
LONG_ATOM_COUNTS_SINCE = 28
#: From this release on, the loader refuses a header whose highest opcode is below
#: OTP 24's (``old_version``).
MIN_OPCODE_CHECK_SINCE = 26


def max_opcode(otp: int) -> int:
    """The highest opcode release ``otp``'s loader takes (the newest known for a release
    past the table)."""
    return MAX_OPCODE_BY_RELEASE.get(otp, max(MAX_OPCODE_BY_RELEASE.values()))


def validate_release(otp) -> int:
    """``otp`` as an int when it is a modelled release; otherwise :class:`ValueError`
    with a one-line message naming the modelled range (a usage error for a front end)."""
    try:
        n = int(otp)
    except (TypeError, ValueError):
        raise ValueError(f"--otp {otp!r}: not a release number (modelled: "
                         f"{OLDEST} to {NEWEST})") from None
    if n not in RELEASES:
        raise ValueError(f"--otp {n}: not a modelled release (modelled: {OLDEST} to {NEWEST})")
    return n
