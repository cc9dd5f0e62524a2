"""Builders of test releases in temporary directories.

Modules come from ``erlc`` when it is installed (one compiler run per set of modules),
else from copies of ``samples/ebin/*.beam`` renamed, else from a minimal synthetic
FOR1/BEAM container (the release reader does not parse beams, so any bytes will do as
long as they differ per module and version).

Layouts built here follow what the tools produce:

- OTP lib tree / release root: ``lib/APP-VSN/ebin/{*.beam,APP.app,APP.appup}``,
  ``releases/VSN/NAME.rel``, ``releases/start_erl.data``;
- rebar3 and mix: ``_build/PROFILE/lib/APP/ebin``;
- ``systools:make_tar``: ``lib/APP-VSN/ebin/...``, ``releases/NAME.rel``,
  ``releases/VSN/{NAME.rel,start.boot}``;
- ``.ez``: a zip of ``APP-VSN/ebin/...``.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

HAVE_ERL = shutil.which("erl") is not None
HAVE_ERLC = shutil.which("erlc") is not None
SAMPLES_EBIN = Path(__file__).resolve().parent.parent / "samples" / "ebin"

# name -> (vsn, modules, appup or None)
DEFAULT_APPS = {
    "alpha": ("1.0", ["alpha_app", "alpha_srv"],
              '{"1.0",\n [{"0.9", [{load_module, alpha_srv}]}],\n'
              ' [{"0.9", [{load_module, alpha_srv}]}]}.\n'),
    "beta": ("2.1", ["beta", "beta_util"],
             '%% upgrade instructions\n{"2.1", [{"2.0", [{update, beta, {advanced, []}}]}],'
             ' [{"2.0", []}]}.\n'),
    "gamma": ("0.3", ["gamma"], None),
}

_beam_cache: dict[tuple[str, str], bytes] = {}


def _chunk(cid: bytes, data: bytes) -> bytes:
    pad = (-len(data)) % 4
    return cid + struct.pack(">I", len(data)) + data + b"\0" * pad


def synthetic_beam(module: str, tag: str = "") -> bytes:
    """A small FOR1/BEAM container: AtU8 (module name first), a Code header, empty
    ImpT/ExpT and a StrT carrying ``tag`` so versions differ."""
    atoms = [module.encode(), b"f"]
    atu8 = struct.pack(">I", len(atoms)) + b"".join(bytes([len(a)]) + a for a in atoms)
    code = struct.pack(">IIIII", 16, 0, 180, 1, 0) + bytes([3])  # int_code_end
    body = b"BEAM" + _chunk(b"AtU8", atu8) + _chunk(b"Code", code) + \
        _chunk(b"StrT", tag.encode()) + _chunk(b"ImpT", struct.pack(">I", 0)) + \
        _chunk(b"ExpT", struct.pack(">I", 0))
    return b"FOR1" + struct.pack(">I", len(body)) + body


def compile_modules(specs: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
    """Beams for (module, tag) pairs: erlc when available, else synthetic containers."""
    missing = list(dict.fromkeys(s for s in specs if s not in _beam_cache))
    if missing and HAVE_ERLC:
        # One erlc run per batch of distinct module names (a name may come in versions).
        batches: list[list[tuple[str, str]]] = []
        for spec in missing:
            for batch in batches:
                if all(spec[0] != other[0] for other in batch):
                    batch.append(spec)
                    break
            else:
                batches.append([spec])
        with tempfile.TemporaryDirectory() as work:
            for i, batch in enumerate(batches):
                d = os.path.join(work, str(i))
                os.mkdir(d)
                srcs = []
                for mod, tag in batch:
                    src = os.path.join(d, mod + ".erl")
                    with open(src, "w") as fh:
                        fh.write(f'-module({mod}).\n-export([tag/0]).\ntag() -> "{tag}".\n')
                    srcs.append(src)
                r = subprocess.run(["erlc", "-o", d, *srcs], capture_output=True, timeout=300)
                if r.returncode != 0:
                    continue
                for mod, tag in batch:
                    _beam_cache[(mod, tag)] = Path(d, mod + ".beam").read_bytes()
    for spec in specs:
        if spec not in _beam_cache:
            _beam_cache[spec] = synthetic_beam(*spec)
    return {s: _beam_cache[s] for s in specs}


def sample_beams() -> dict[str, bytes]:
    """The committed sample beams, if any (another source of realistic bytes)."""
    if not SAMPLES_EBIN.is_dir():
        return {}
    return {p.stem: p.read_bytes() for p in sorted(SAMPLES_EBIN.glob("*.beam"))}


def app_file_text(name: str, vsn: str, modules: list[str]) -> str:
    mods = ",".join(modules)
    return (f"{{application, {name},\n [{{description, \"{name} test app\"}},\n"
            f"  {{vsn, \"{vsn}\"}},\n  {{modules, [{mods}]}},\n  {{registered, []}},\n"
            f"  {{applications, [kernel, stdlib]}}]}}.\n")


def app_files(name: str, vsn: str, modules: list[str], appup: str | None) -> dict[str, bytes]:
    """Relative paths (inside ``APP-VSN/``) -> bytes for one application."""
    beams = compile_modules([(m, f"{name}-{vsn}") for m in modules])
    out = {f"ebin/{m}.beam": beams[(m, f"{name}-{vsn}")] for m in modules}
    out[f"ebin/{name}.app"] = app_file_text(name, vsn, modules).encode()
    if appup is not None:
        out[f"ebin/{name}.appup"] = appup.encode()
    return out


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def rel_text(name: str, vsn: str, apps: dict[str, str], erts: str = "13.1.5") -> str:
    entries = ",\n  ".join(f'{{{a}, "{v}"}}' for a, v in apps.items())
    return f'%% rel file\n{{release, {{"{name}", "{vsn}"}}, {{erts, "{erts}"}},\n [{entries}]}}.\n'


def release_files(apps=None, *, rel_name="demo", rel_vsn="1.0",
                  old_versions: dict[str, str] | None = None) -> dict[str, bytes]:
    """Files of a release root: ``lib/APP-VSN/...``, ``releases/...``.  ``old_versions``
    adds a second, older copy of some applications (as after an upgrade)."""
    apps = DEFAULT_APPS if apps is None else apps
    files: dict[str, bytes] = {}
    for name, (vsn, modules, appup) in apps.items():
        for rel, data in app_files(name, vsn, modules, appup).items():
            files[f"lib/{name}-{vsn}/{rel}"] = data
    for name, vsn in (old_versions or {}).items():
        modules = apps[name][1]
        for rel, data in app_files(name, vsn, modules, None).items():
            files[f"lib/{name}-{vsn}/{rel}"] = data
    rel = rel_text(rel_name, rel_vsn, {n: v for n, (v, _, _) in apps.items()})
    files[f"releases/{rel_vsn}/{rel_name}.rel"] = rel.encode()
    files["releases/start_erl.data"] = f"13.1.5 {rel_vsn}\n".encode()
    return files


def build_lib_tree(root: Path, apps=None) -> Path:
    """An OTP lib tree ``root/lib/APP-VSN/ebin`` (no releases directory)."""
    apps = DEFAULT_APPS if apps is None else apps
    for name, (vsn, modules, appup) in apps.items():
        _write(root / "lib" / f"{name}-{vsn}", app_files(name, vsn, modules, appup))
    return root / "lib"


def build_release_root(root: Path, **kw) -> Path:
    _write(root, release_files(**kw))
    return root


def build_build_tree(root: Path, profile: str = "default", apps=None) -> Path:
    """A rebar3 (``_build/default/lib/APP/ebin``) or mix (``_build/dev/lib/APP/ebin``)
    tree: application directories carry no version."""
    apps = DEFAULT_APPS if apps is None else apps
    for name, (vsn, modules, appup) in apps.items():
        _write(root / "_build" / profile / "lib" / name,
               app_files(name, vsn, modules, appup))
    # rebar3 also leaves plugins and a lock file around: they must be ignored.
    (root / "_build" / profile / "plugins").mkdir(parents=True, exist_ok=True)
    (root / "rebar.lock").write_text("[].\n")
    return root / "_build"


def build_flat_dir(root: Path, modules=("m_one", "m_two")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    beams = compile_modules([(m, "flat") for m in modules])
    for (m, _), data in beams.items():
        (root / f"{m}.beam").write_bytes(data)
    return root


def _tar_add(tf: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    tf.addfile(info, io.BytesIO(data))


def build_tarball(path: Path, files: dict[str, bytes], compression: str = "gz") -> Path:
    """A tarball of ``files`` in the systools layout (directories included)."""
    mode = "w:" + compression if compression else "w"
    with tarfile.open(path, mode) as tf:
        dirs = sorted({str(Path(n).parent) for n in files} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        for name, data in files.items():
            _tar_add(tf, name, data)
    return path


def systools_layout(**kw) -> dict[str, bytes]:
    """What ``systools:make_tar`` writes: the .rel also at ``releases/NAME.rel``."""
    files = release_files(**kw)
    rel_name, rel_vsn = kw.get("rel_name", "demo"), kw.get("rel_vsn", "1.0")
    files[f"releases/{rel_name}.rel"] = files[f"releases/{rel_vsn}/{rel_name}.rel"]
    # A boot script as systools writes it (term_to_binary of {script, ...}): its code
    # path names each application's ebin.
    from beaminspect.terms import Atom
    from etf_encode import encode
    def text(s: str) -> list:
        return [ord(c) for c in s]           # an Erlang string
    dirs = sorted({"$ROOT/" + posixpath.dirname(n) for n in files
                   if n.startswith("lib/") and n.endswith(".beam")})
    files[f"releases/{rel_vsn}/start.boot"] = encode(
        (Atom("script"), (text(rel_name), text(rel_vsn)),
         [(Atom("path"), [text(d) for d in dirs])]))
    del files["releases/start_erl.data"]
    return files


def build_ez(path: Path, name: str = "delta", vsn: str = "0.5",
             modules=("delta", "delta_sup")) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}-{vsn}/", b"")
        for rel, data in app_files(name, vsn, list(modules), None).items():
            zf.writestr(f"{name}-{vsn}/{rel}", data)
        zf.writestr(f"{name}-{vsn}/priv/readme.txt", b"not a beam")
    return path


def ez_bytes(**kw) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return build_ez(Path(d) / "x.ez", **kw).read_bytes()


# -- hostile archives -------------------------------------------------------------


def build_hostile_tar(path: Path) -> Path:
    """Unsafe members next to a safe one: ``../evil.beam``, ``/abs.beam``, a symlink,
    a hard link and a device, each must be refused (and never written anywhere)."""
    good = compile_modules([("good", "h")])[("good", "h")]
    with tarfile.open(path, "w:gz") as tf:
        _tar_add(tf, "lib/safe-1.0/ebin/good.beam", good)
        _tar_add(tf, "../evil.beam", synthetic_beam("evil"))
        _tar_add(tf, "lib/safe-1.0/ebin/../../../../evil2.beam", synthetic_beam("evil2"))
        _tar_add(tf, "/abs.beam", synthetic_beam("abs"))
        link = tarfile.TarInfo("lib/safe-1.0/ebin/link.beam")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
        hard = tarfile.TarInfo("lib/safe-1.0/ebin/hard.beam")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "lib/safe-1.0/ebin/good.beam"
        tf.addfile(hard)
        dev = tarfile.TarInfo("lib/safe-1.0/ebin/dev.beam")
        dev.type = tarfile.CHRTYPE
        dev.devmajor, dev.devminor = 1, 3
        tf.addfile(dev)
    return path


def build_huge_claim_tar(path: Path, claimed: int = 10 * 2**30) -> Path:
    """A tarball whose only member header claims ``claimed`` bytes; the data is short."""
    info = tarfile.TarInfo("lib/big-1.0/ebin/big.beam")
    info.size = claimed
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    raw = header + b"FOR1" + b"\0" * 508
    path.write_bytes(_gzip(raw))
    return path


def _gzip(data: bytes) -> bytes:
    import gzip
    return gzip.compress(data, mtime=0)


def build_gzip_bomb(path: Path, member_size: int = 300 * 2**20) -> Path:
    """A real tar.gz of one member of ``member_size`` zero bytes: a few hundred KB on
    disk, expanding ~1000 times.  The stream is written chunk by chunk."""
    info = tarfile.TarInfo("lib/bomb-1.0/ebin/bomb.beam")
    info.size = member_size
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)   # gzip wrapper
    chunk = b"\0" * (4 * 2**20)
    with open(path, "wb") as out:
        out.write(comp.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
        left = member_size
        while left:
            n = min(left, len(chunk))
            out.write(comp.compress(chunk[:n]))
            left -= n
        out.write(comp.compress(b"\0" * (1024 + (-member_size) % 512)))
        out.write(comp.flush())
    return path


def build_hostile_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("safe-1.0/ebin/fine.beam", synthetic_beam("fine"))
        zf.writestr("../evil.beam", synthetic_beam("evil"))
        zf.writestr("/abs.beam", synthetic_beam("abs"))
        link = zipfile.ZipInfo("safe-1.0/ebin/link.beam")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    return path


def snapshot(root: Path) -> dict[str, int]:
    """Every path under ``root`` with its size (directories as -1)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = -1
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = os.lstat(p).st_size
    return out


# -- OTP's own tools ---------------------------------------------------------------


def build_systools_tar(work: Path) -> Path:
    """A tarball made by ``systools:make_tar`` from a release of kernel, stdlib and two
    test applications (needs ``erl``)."""
    work = Path(work).resolve()
    apps = {k: DEFAULT_APPS[k] for k in ("alpha", "beta")}
    build_lib_tree(work, apps)
    kernel = _otp_app_vsn("kernel")
    stdlib = _otp_app_vsn("stdlib")
    erts = _otp_app_vsn("erts")
    rel = rel_text("demo", "1.0", {"kernel": kernel, "stdlib": stdlib,
                                   **{n: v for n, (v, _, _) in apps.items()}}, erts=erts)
    (work / "demo.rel").write_text(rel)
    paths = f'"{work}/lib/*/ebin"'
    expr = (f'S = systools:make_script("demo", [{{path, [{paths}]}}, silent, no_warn_sasl]), '
            f'R = systools:make_tar("demo", [{{path, [{paths}]}}, silent]), '
            f'io:format("~p ~p~n", [S, R]), halt().')
    r = subprocess.run(["erl", "-noshell", "-eval", expr], cwd=work, capture_output=True,
                       text=True, timeout=300)
    tar = work / "demo.tar.gz"
    if not tar.exists():
        raise RuntimeError(f"systools:make_tar failed: {r.stdout} {r.stderr}")
    return tar


def _otp_app_vsn(app: str) -> str:
    r = subprocess.run(["erl", "-noshell", "-eval",
                        f'application:load({app}), {{ok, V}} = application:get_key({app}, vsn),'
                        f' io:format("~s", [V]), halt().'] if app != "erts" else
                       ["erl", "-noshell", "-eval",
                        'io:format("~s", [erlang:system_info(version)]), halt().'],
                       capture_output=True, text=True, timeout=60)
    return r.stdout.strip()


def bare_app_pair(work: Path) -> tuple[Path, Path]:
    """Two versions (1.0, 1.1) of an application ``shop`` as bare ebins with their .app
    files, holding the two versions of the export_removed pair's module."""
    src = Path(__file__).resolve().parent.parent / "samples" / "pairs" / "export_removed"
    out = []
    for side, vsn in (("v1", "1.0"), ("v2", "1.1")):
        ebin = work / side / "shop" / "ebin"
        ebin.mkdir(parents=True)
        for beam in (src / side).glob("*.beam"):
            (ebin / beam.name).write_bytes(beam.read_bytes())
        (ebin / "shop.app").write_text(
            f'{{application,shop,[{{vsn,"{vsn}"}},{{modules,[hl_export_removed]}}]}}.\n')
        out.append(ebin)
    return out[0], out[1]
