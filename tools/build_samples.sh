#!/usr/bin/env bash
# Rebuild every committed .beam under samples/ from its source.
#
#   tools/build_samples.sh            (from anywhere; paths are repo-relative)
#
# Needs erlc and erl (Erlang/OTP; the committed files were built with the
# release named in samples/README.md) and elixirc for samples/elixir/.
# All Erlang modules are compiled with +deterministic, so the output does not
# depend on the checkout's location and a rebuild gives identical bytes.
#
# With the Debian roots of tools/otp-roots.sh (make oracles) and as root, it also
# builds samples/src and samples/elixir_src with OTP 27 / Elixir 1.18 and OTP 29 /
# Elixir 1.20 into samples/otp27/ and samples/otp29/ (see samples/README.md).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
S=samples

die() { echo "build_samples: $*" >&2; exit 1; }

command -v erlc >/dev/null 2>&1 || die "erlc not found: install Erlang/OTP (e.g. apt-get install erlang-nox)"
command -v erl >/dev/null 2>&1 || die "erl not found: install Erlang/OTP"

export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset ERL_COMPILER_OPTIONS ERL_FLAGS ERL_AFLAGS ERL_ZFLAGS

OTP=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')
EXPECTED_OTP=$(sed -n 's/^Built with Erlang\/OTP \([0-9]*\).*/\1/p' "$S/README.md" 2>/dev/null || true)
if [ -n "$EXPECTED_OTP" ] && [ "$OTP" != "$EXPECTED_OTP" ]; then
    echo "build_samples: warning: running OTP $OTP, samples/README.md says OTP $EXPECTED_OTP" >&2
fi

ERLC_FLAGS=(+deterministic +warnings_as_errors)

# erlc -o DIR [flags] FILES...
compile() {
    local out=$1; shift
    mkdir -p "$out"
    erlc -pa "$S/ebin" -o "$out" "${ERLC_FLAGS[@]}" "$@"
}

echo "== samples/ebin (+debug_info)"
rm -rf "$S/ebin" "$S/variants"
mkdir -p "$S/ebin"
# The behaviour module first, so its implementations can check their callbacks.
compile "$S/ebin" +debug_info "$S/src/bi_plugin.erl"
for f in "$S"/src/*.erl; do
    [ "$(basename "$f")" = bi_plugin.erl ] && continue
    compile "$S/ebin" +debug_info "$f"
done

echo "== samples/variants/no_debug_info"
for m in bi_funs bi_records bi_server; do
    compile "$S/variants/no_debug_info" "$S/src/$m.erl"
done

echo "== samples/variants/compressed (+compressed, gzip files)"
for m in bi_literals bi_server bi_unicode; do
    compile "$S/variants/compressed" +debug_info +compressed "$S/src/$m.erl"
done

echo "== samples/variants/stripped (beam_lib:strip/1)"
mkdir -p "$S/variants/stripped"
for m in bi_binaries bi_funs bi_server bi_unicode; do
    cp "$S/ebin/$m.beam" "$S/variants/stripped/$m.beam"
done
erl -noshell -eval '
    Files = filelib:wildcard("samples/variants/stripped/*.beam"),
    [case beam_lib:strip(F) of
         {ok, _} -> ok;
         Error -> io:format(standard_error, "strip ~s: ~p~n", [F, Error]), halt(1)
     end || F <- Files],
    halt(0).'

echo "== samples/pairs (+debug_info)"
for dir in "$S"/pairs/*/v1 "$S"/pairs/*/v2; do
    ls "$dir"/*.erl >/dev/null 2>&1 || continue   # Elixir pairs: below
    rm -f "$dir"/*.beam
    compile "$dir" +debug_info "$dir"/*.erl
done

if command -v elixirc >/dev/null 2>&1; then
    echo "== samples/elixir (elixirc)"
    rm -rf "$S/elixir"
    mkdir -p "$S/elixir"
    # elixirc honours ERL_COMPILER_OPTIONS (deterministic drops the source
    # from CInf), but its Dbgi chunk keeps the source's absolute path: compile
    # from a fixed staging directory so the bytes do not depend on the checkout.
    STAGE=/tmp/beaminspect-samples/elixir_src
    rm -rf "$STAGE"
    mkdir -p "$STAGE"
    cp "$S"/elixir_src/*.ex "$STAGE"/
    (cd "$STAGE" && ERL_COMPILER_OPTIONS=deterministic elixirc \
        --ignore-module-conflict -o "$ROOT/$S/elixir" ./*.ex)
    rm -rf "$STAGE"
    echo "== samples/pairs (Elixir, elixirc)"
    for dir in "$S"/pairs/*/v1 "$S"/pairs/*/v2; do
        ls "$dir"/*.ex >/dev/null 2>&1 || continue
        rel=${dir#"$S"/pairs/}
        PSTAGE=/tmp/beaminspect-samples/pairs/$rel
        rm -rf "$PSTAGE" "$dir"/*.beam
        mkdir -p "$PSTAGE"
        cp "$dir"/*.ex "$PSTAGE"/
        (cd "$PSTAGE" && ERL_COMPILER_OPTIONS=deterministic elixirc \
            --ignore-module-conflict -o "$ROOT/$dir" ./*.ex)
        rm -rf "$PSTAGE"
    done
else
    echo "build_samples: warning: elixirc not found, samples/elixir/ left as is" >&2
fi

# Newer releases: the same sources (samples/src, samples/elixir_src) built by OTP 27 /
# Elixir 1.18 and OTP 29 / Elixir 1.20 in the Debian roots of tools/otp-roots.sh (make
# oracles), into samples/otpNN/ebin and samples/otpNN/elixir.  Skipped, with a warning,
# when a root is missing or we are not root (chroot); those folders are then left as is.
ROOTS=${BEAMINSPECT_ROOTS:-/var/cache/beaminspect/roots}

# in_root DIR CMD...: run CMD in the root, with proc mounted in a private namespace.
in_root() {
    local dir=$1; shift
    unshare --mount --propagation private -- sh -c \
        'mount -t proc proc "$0/proc" 2>/dev/null; exec chroot "$0" "$@"' "$dir" \
        /usr/bin/env -i HOME=/tmp PATH=/usr/bin:/bin LANG=C.UTF-8 LC_ALL=C.UTF-8 "$@"
}

build_in_root() {
    local rel=$1 dir=$ROOTS/otp$1 stage out
    if [ ! -f "$dir/.beaminspect-root" ]; then
        echo "build_samples: warning: no OTP $rel root in $dir (make oracles), samples/otp$rel/ left as is" >&2
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "build_samples: warning: building in the OTP $rel root needs root, samples/otp$rel/ left as is" >&2
        return 0
    fi
    local vsn elixir_vsn flags=("${ERLC_FLAGS[@]}")
    # OTP 29 deprecates `catch Expr` (bi_flow and bi_funs use it on purpose).
    [ "$rel" -lt 29 ] || flags+=(+nowarn_deprecated_catch)
    vsn=$(cat "$dir"/usr/lib/erlang/releases/"$rel"/OTP_VERSION)
    echo "== samples/otp$rel/ebin (OTP $vsn in $dir, +debug_info)"
    # Inside the root: the same staging path as the host's Elixir build, so Elixir's
    # Dbgi (which keeps the source path) reads alike across releases.
    stage=/tmp/beaminspect-samples
    rm -rf "$dir$stage"
    mkdir -p "$dir$stage/src" "$dir$stage/elixir_src" "$dir$stage/ebin" "$dir$stage/elixir"
    cp "$S"/src/*.erl "$dir$stage/src/"
    cp "$S"/elixir_src/*.ex "$dir$stage/elixir_src/"
    # The behaviour module first, so its implementations can check their callbacks.
    in_root "$dir" sh -c 'cd "$1" && shift &&
        erlc -pa ebin -o ebin "$@" +debug_info src/bi_plugin.erl &&
        for f in src/*.erl; do
            [ "$f" = src/bi_plugin.erl ] && continue
            erlc -pa ebin -o ebin "$@" +debug_info "$f" || exit 1
        done' sh "$stage" "${flags[@]}"
    out=$S/otp$rel
    rm -rf "$out/ebin" "$out/elixir"
    mkdir -p "$out/ebin" "$out/elixir"
    cp "$dir$stage"/ebin/*.beam "$out/ebin/"
    elixir_vsn=$(in_root "$dir" elixir -e 'IO.write(System.version())')
    echo "== samples/otp$rel/elixir (Elixir $elixir_vsn, elixirc)"
    in_root "$dir" sh -c 'cd "$1/elixir_src" && ERL_COMPILER_OPTIONS=deterministic elixirc \
        --ignore-module-conflict -o "$1/elixir" ./*.ex' sh "$stage"
    cp "$dir$stage"/elixir/*.beam "$out/elixir/"
    rm -rf "$dir$stage"
}

for rel in 27 29; do build_in_root "$rel"; done

echo "== done (OTP $OTP) in $ROOT/$S"
