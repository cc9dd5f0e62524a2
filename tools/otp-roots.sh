#!/usr/bin/env bash
# Build and cache Debian roots holding newer Erlang/OTP releases, the tests' oracles
# beside the host's OTP 25:
#
#   otp27: Debian 13 "trixie"   (Erlang/OTP 27.3.4, Elixir 1.18.3)
#   otp29: Debian unstable "sid" (Erlang/OTP 29.x,  Elixir 1.20.x)
#
#   tools/otp-roots.sh [otp27|otp29 ...]     (default: both; `make oracles`)
#
# Roots live in ${BEAMINSPECT_ROOTS:-/var/cache/beaminspect/roots}/otpNN, outside the
# work tree, so every clone on the machine (CI's included) reuses them.  A finished root
# has the stamp file .beaminspect-root (what it holds, how long it took) and is reused;
# a root without the stamp is half-built and is removed and built again.
#
# Needs root, debootstrap and the Debian archive (the mirror of this machine's apt
# sources, or $BEAMINSPECT_MIRROR).  Exits non-zero with one line on stderr when it
# cannot build; the tests that use the roots then skip.
set -euo pipefail

CACHE=${BEAMINSPECT_ROOTS:-/var/cache/beaminspect/roots}
STAMP_NAME=.beaminspect-root
PACKAGES=(erlang-nox erlang-dev elixir)

die() { echo "otp-roots: $*" >&2; exit 1; }
say() { echo "otp-roots: $*" >&2; }

suite_of() {
    case $1 in
        otp27) echo trixie ;;
        otp29) echo sid ;;
        *) die "unknown root '$1' (known: otp27 otp29)" ;;
    esac
}

# The Debian mirror this machine's apt uses (deb822 .sources or one-line lists).
detect_mirror() {
    if [ -n "${BEAMINSPECT_MIRROR:-}" ]; then echo "$BEAMINSPECT_MIRROR"; return; fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(sed -n -E \
            -e 's/^[[:space:]]*URIs:[[:space:]]*(.*)$/\1/p' \
            -e 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*$/\2/p' "$f" \
            | tr ' ' '\n' | grep -E '^(https?|file)://.*/debian/?$' | head -n1 || true)
        if [ -n "$uri" ]; then echo "${uri%/}"; return; fi
    done
    echo "http://deb.debian.org/debian"
}

# Can we open a TCP connection to the mirror's host?  (http/https mirrors only.)
mirror_reachable() {
    local url=$1 rest host port
    case $url in
        http://*) rest=${url#http://}; port=80 ;;
        https://*) rest=${url#https://}; port=443 ;;
        *) return 0 ;;
    esac
    host=${rest%%/*}
    case $host in *:*) port=${host##*:}; host=${host%%:*} ;; esac
    timeout 15 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

# Unmount everything mounted at or below $1 (deepest first).
unmount_below() {
    local dir mnts m
    dir=$(readlink -f "$1")
    mnts=$(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
    for m in $mnts; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}

# Whatever root is being built is unmounted however the script ends.
BUILDING=
trap '[ -z "$BUILDING" ] || unmount_below "$BUILDING"' EXIT
trap 'exit 130' INT TERM HUP

ensure_proc() {
    local dir=$1
    mkdir -p "$dir/proc"
    if ! awk -v d="$(readlink -f "$dir")/proc" '$2 == d { f = 1 } END { exit !f }' /proc/self/mounts; then
        mount -t proc proc "$dir/proc"
    fi
}

build_root() {
    local name=$1 suite dir log start end otp elixir
    suite=$(suite_of "$name")
    dir=$CACHE/$name
    log=$CACHE/$name.log
    if [ -f "$dir/$STAMP_NAME" ] && [ -x "$dir/usr/bin/erl" ]; then
        say "$name ($suite) ready in $dir (built while waiting for the lock)"
        return 0
    fi
    if [ -e "$dir" ]; then
        say "$name: removing half-built root $dir"
        unmount_below "$dir"
        rm -rf --one-file-system "$dir"
    fi
    mkdir -p "$dir"
    BUILDING=$dir
    start=$(date +%s)
    say "$name: debootstrap --variant=minbase $suite from $MIRROR (log: $log)"
    : >"$log"
    if ! debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >>"$log" 2>&1; then
        unmount_below "$dir"
        die "$name: debootstrap $suite failed (see $log: $(tail -n1 "$log"))"
    fi
    # No services start inside the root.
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    ensure_proc "$dir"
    say "$name: apt-get install ${PACKAGES[*]}"
    if ! chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
            sh -c 'apt-get -o Acquire::Check-Valid-Until=false update -q &&
                   apt-get install -y -q --no-install-recommends "$@" &&
                   apt-get clean' sh "${PACKAGES[@]}" >>"$log" 2>&1; then
        unmount_below "$dir"
        die "$name: apt-get install in the $suite root failed (see $log: $(tail -n1 "$log"))"
    fi
    if ! otp=$(chroot "$dir" /usr/bin/env HOME=/tmp LANG=C.UTF-8 erl -noshell -eval \
            'io:format("~s ~s", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().' 2>>"$log"); then
        unmount_below "$dir"
        die "$name: erl does not start in the $suite root (see $log)"
    fi
    elixir=$(chroot "$dir" /usr/bin/env HOME=/tmp LANG=C.UTF-8 elixir -e 'IO.write(System.version())' 2>>"$log" || echo '?')
    unmount_below "$dir"
    end=$(date +%s)
    {
        echo "suite=$suite"
        echo "mirror=$MIRROR"
        echo "otp=${otp% *}"
        echo "erts=${otp#* }"
        echo "otp_version=$(cat "$dir"/usr/lib/erlang/releases/*/OTP_VERSION 2>/dev/null | head -n1)"
        echo "elixir=$elixir"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "seconds=$((end - start))"
    } >"$dir/$STAMP_NAME.tmp"
    mv "$dir/$STAMP_NAME.tmp" "$dir/$STAMP_NAME"
    BUILDING=
    say "$name ($suite) built in $((end - start)) s: OTP ${otp% *} (erts ${otp#* }), Elixir $elixir, in $dir"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(otp27 otp29)
for n in "${names[@]}"; do suite_of "$n" >/dev/null; done

# Nothing to build: no need for root, debootstrap or the network.
todo=()
for n in "${names[@]}"; do
    if [ -f "$CACHE/$n/$STAMP_NAME" ] && [ -x "$CACHE/$n/usr/bin/erl" ]; then
        say "$n ($(suite_of "$n")) ready in $CACHE/$n: $(grep -m1 '^otp_version=' "$CACHE/$n/$STAMP_NAME" || true)"
    else
        todo+=("$n")
    fi
done
[ ${#todo[@]} -gt 0 ] || exit 0

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mount); roots not built"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (apt-get install debootstrap); roots not built"
command -v chroot >/dev/null 2>&1 || die "chroot not found; roots not built"

mkdir -p "$CACHE" || die "cannot create $CACHE"
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock $CACHE/.lock"

MIRROR=$(detect_mirror)
mirror_reachable "$MIRROR" || die "cannot reach the Debian archive at $MIRROR (no network?); roots not built"

for n in "${todo[@]}"; do build_root "$n"; done
