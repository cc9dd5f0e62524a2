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
           "LEGACY_BINARY_OPS", "REFUSED_SINCE", "RUNTIME_FEATURE_CHECK_UNTIL",
           "ERTS_MAJOR_BY_RELEASE", "release_of_erts", "max_opcode", "validate_release"]

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

#: Features each release knows (``erl_features:all()``: measured on 25, 27 and 29), and
#: those its runtime enables without ``-enable-feature``.
KNOWN_FEATURES: dict[int, set[str]] = {25: {"maybe_expr"}, 26: {"maybe_expr"},
                                       27: {"maybe_expr"}, 28: {"maybe_expr"},
                                       29: {"maybe_expr", "compr_assign"}}
DEFAULT_FEATURES: dict[int, set[str]] = {25: set(), 26: set(), 27: {"maybe_expr"},
                                         28: {"maybe_expr"}, 29: {"maybe_expr"}}

#: Up to this release ``code:load_file/1`` refuses a module compiled with a feature the
#: runtime has not enabled (``features_not_allowed``); from OTP 26 on it loads it
#: (OTP-18445; measured: OTP 27 and 29 load a maybe_expr module with the feature
#: disabled).
RUNTIME_FEATURE_CHECK_UNTIL = 25

#: From this release on, the compiler may write LitT with a leading size 0 and the
#: table uncompressed (the loader takes both forms).
LITT_UNCOMPRESSED_SINCE = 28
#: From this release on, a negative AtU8 count announces compact-encoded atom lengths.
LONG_ATOM_COUNTS_SINCE = 28
#: From this release on, the loader refuses a header whose highest opcode is below
#: OTP 24's (``old_version``).
MIN_OPCODE_CHECK_SINCE = 26

#: The binary construction instructions of compilers before OTP 25 (replaced by
#: bs_create_bin): loaded up to OTP 27, refused from OTP 28 on.
LEGACY_BINARY_OPS: frozenset[str] = frozenset({
    "bs_init2", "bs_init_bits", "bs_bits_to_bytes", "bs_add", "bs_append",
    "bs_private_append", "bs_utf8_size", "bs_utf16_size", "bs_put_utf8", "bs_put_utf16",
    "bs_put_utf32", "bs_put_integer", "bs_put_binary", "bs_put_float", "bs_put_string"})
#: Instructions older compilers emit that a release's loader no longer takes ("please
#: re-compile this module with an Erlang/OTP N compiler or update your Erlang/OTP
#: version"): name -> the first release that refuses it.  Measured on OTP 25's, 27's and
#: 29's VMs (tests/test_loader_agreement.py): OTP 27 takes them all; OTP 29 refuses the
#: legacy binary construction (removed in OTP 28 by the sources) and bs_test_unit, which
#: OTP 25's compiler writes for a match ending in a binary tail (every one of the 114
#: shipped files that has it, and none other for that reason).
REFUSED_SINCE: dict[str, int] = {**{name: 28 for name in LEGACY_BINARY_OPS},
                                 "bs_test_unit": 29}


#: The ERTS major version each release ships (erts-13.x is OTP 25...).
ERTS_MAJOR_BY_RELEASE: dict[int, int] = {25: 13, 26: 14, 27: 15, 28: 16, 29: 17}


def release_of_erts(major: int | None) -> int | None:
    """The OTP release whose ERTS has major version ``major``, or None."""
    for rel, m in ERTS_MAJOR_BY_RELEASE.items():
        if m == major:
            return rel
    return None


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
