#!/usr/bin/env bash
# Rebuild every committed .beam under samples/ from its source.
#
#   tools/build_samples.sh            (from anywhere; paths are repo-relative)
#
# Needs erlc and erl (Erlang/OTP; the committed files were built with the
# release named in samples/README.md) and elixirc for samples/elixir/.
# All Erlang modules are compiled with +deterministic, so the output does not
# depend on the checkout's location and a rebuild gives identical bytes.
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
else
    echo "build_samples: warning: elixirc not found, samples/elixir/ left as is" >&2
fi

echo "== done (OTP $OTP) in $ROOT/$S"
