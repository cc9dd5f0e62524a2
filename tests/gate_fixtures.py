"""Release pairs for the gate and appup tests.

``shop`` goes from 1.0 to 1.1 with the scenario pairs of ``samples/pairs`` (v1 beams
in 1.0, v2 beams in 1.1), a caller compiled at test time that keeps calling an export
the upgrade removes, a client whose calls change, one module added and one removed;
``tools`` 2.0 is the same in both.  Modules of our own are compiled with ``erlc`` at
test time (the tests using them need Erlang/OTP).
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
import zipfile
from pathlib import Path

from release_fixtures import build_tarball, rel_text

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT / "samples" / "pairs"
EBIN = ROOT / "samples" / "ebin"

ERLC_FLAGS = ["+debug_info", "+deterministic"]

# Modules of our own: name -> source, per version (None: absent in that version).
CALLER = ("-module(shop_caller).\n-export([go/0]).\n"
          "go() -> hl_export_removed:old_api().\n")
CLIENT_V1 = ("-module(shop_client).\n-export([run/1]).\n"
             "run(X) -> hl_pure_library_change:slug(X).\n")
CLIENT_V2 = ("-module(shop_client).\n-export([run/1]).\n"
             "run(X) -> {hl_pure_library_change:slug(X), hl_export_removed:api(X, []),\n"
             "           hl_export_removed:gone(), lists:reverse([X]), vendor_lib:f(X)}.\n")
LEGACY = "-module(shop_legacy).\n-export([y/0]).\ny() -> ok.\n"
NEWMOD = ("-module(shop_new).\n-export([x/0]).\n"
          "x() -> hl_export_removed:stable().\n")

SHOP_PAIRS = ["export_removed", "local_loop_killed", "gen_server_code_change_ok",
              "gen_server_state_change", "pure_library_change", "identical_md5"]

#: What compare_releases must find for shop 1.0 -> 1.1.
EXPECTED_COUNTS = {"added": 1, "removed": 1, "changed": 6, "unchanged": 5}

BAD_APPUP = """\
{"1.1",
 [{"1.0", [{load_module, hl_export_removed},
           {load_module, hl_local_loop_killed},
           {update, hl_gen_server_state_change, {advanced, []}},
           {load_module, hl_gen_server_code_change_ok},
           {load_module, ghost}]}],
 [{"1.0", []}]}.
"""

GOOD_APPUP = """\
{"1.1",
 [{<<"1\\\\.0(\\\\.[0-9]+)*">>,
   [{add_module, shop_new},
    {load_module, hl_export_removed},
    {load_module, hl_pure_library_change},
    {load_module, hl_local_loop_killed, soft_purge, soft_purge, []},
    {update, hl_gen_server_code_change_ok, {advanced, []}},
    {load_module, hl_gen_server_state_change},
    {load_module, shop_client, [hl_export_removed]},
    {delete_module, shop_legacy}]}],
 [{"1.0",
   [{add_module, shop_legacy},
    {load_module, shop_client, [hl_export_removed]},
    {load_module, hl_gen_server_state_change},
    {update, hl_gen_server_code_change_ok, {advanced, []}},
    {load_module, hl_local_loop_killed, soft_purge, soft_purge, []},
    {load_module, hl_pure_library_change},
    {load_module, hl_export_removed},
    {delete_module, shop_new}]}]}.
"""


def _erlc(sources: dict[str, str]) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as d:
        files = []
        for name, src in sources.items():
            p = os.path.join(d, name + ".erl")
            Path(p).write_text(src)
            files.append(p)
        subprocess.run(["erlc", *ERLC_FLAGS, "-o", d, *files], check=True,
                       capture_output=True, timeout=300)
        return {name: Path(d, name + ".beam").read_bytes() for name in sources}


@functools.lru_cache(maxsize=None)
def compiled(name: str, src: str) -> bytes:
    return _erlc({name: src})[name]


@functools.lru_cache(maxsize=None)
def pair_beam(scenario: str, version: str) -> tuple[str, bytes]:
    """(module, bytes) of a scenario pair: the committed beam, else compiled from the
    committed source the way tools/build_samples.sh does."""
    d = PAIRS / scenario / version
    srcs = sorted(d.glob("*.erl"))
    if not srcs:  # an Elixir pair: its beam is committed (elixirc, tools/build_samples.sh)
        beam = next(iter(sorted(d.glob("*.beam"))))
        return beam.stem, beam.read_bytes()
    name = srcs[0].stem
    beam = d / f"{name}.beam"
    if beam.exists():
        return name, beam.read_bytes()
    return name, compiled(name, srcs[0].read_text())


def otp_app_vsn(app: str) -> str:
    expr = (f'application:load({app}), {{ok, V}} = application:get_key({app}, vsn), '
            'io:format("~s", [V]), halt().') if app != "erts" else \
        'io:format("~s", [erlang:system_info(version)]), halt().'
    r = subprocess.run(["erl", "-noshell", "-eval", expr], capture_output=True, text=True,
                       timeout=60)
    return r.stdout.strip()


def app_file(name: str, vsn: str, modules: list[str]) -> bytes:
    return (f"{{application, {name},\n [{{description, \"{name}\"}},\n  {{vsn, \"{vsn}\"}},\n"
            f"  {{modules, [{', '.join(sorted(modules))}]}},\n  {{registered, []}},\n"
            f"  {{applications, [kernel, stdlib]}}]}}.\n").encode()


def shop_modules(version: str) -> dict[str, bytes]:
    """Module name -> beam bytes of shop 1.0 (``v1``) or 1.1 (``v2``)."""
    mods = dict(pair_beam(s, version) for s in SHOP_PAIRS)
    mods["shop_caller"] = compiled("shop_caller", CALLER)
    mods["bi_records"] = (EBIN / "bi_records.beam").read_bytes()
    if version == "v1":
        mods["shop_client"] = compiled("shop_client", CLIENT_V1)
        mods["shop_legacy"] = compiled("shop_legacy", LEGACY)
    else:
        mods["shop_client"] = compiled("shop_client", CLIENT_V2)
        mods["shop_new"] = compiled("shop_new", NEWMOD)
    return mods


def app_tree(name: str, vsn: str, modules: dict[str, bytes],
             appup: str | None = None) -> dict[str, bytes]:
    """Files of ``lib/NAME-VSN``, relative to the release root."""
    base = f"lib/{name}-{vsn}/ebin"
    files = {f"{base}/{m}.beam": data for m, data in modules.items()}
    files[f"{base}/{name}.app"] = app_file(name, vsn, list(modules))
    if appup is not None:
        files[f"{base}/{name}.appup"] = appup.encode()
    return files


def tools_modules() -> dict[str, bytes]:
    return {m: (EBIN / f"{m}.beam").read_bytes() for m in ("bi_funs", "bi_binaries")}


def shop_release_files(version: str, appup: str | None = None, *,
                       erts: str = "13.1.5", kernel: str = "8.5.3",
                       stdlib: str = "4.2", sasl: str | None = None) -> dict[str, bytes]:
    shop_vsn = "1.0" if version == "v1" else "1.1"
    rel_vsn = shop_vsn
    files = app_tree("shop", shop_vsn, shop_modules(version),
                     appup if version == "v2" else None)
    files.update(app_tree("tools", "2.0", tools_modules()))
    apps = {"kernel": kernel, "stdlib": stdlib}
    if sasl is not None:
        apps["sasl"] = sasl
    apps.update({"shop": shop_vsn, "tools": "2.0"})
    files[f"releases/{rel_vsn}/shop.rel"] = rel_text("shop", rel_vsn, apps, erts=erts).encode()
    files["releases/start_erl.data"] = f"{erts} {rel_vsn}\n".encode()
    return files


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def build_shop_pair(work: Path, appup: str | None = BAD_APPUP, *, layout: str = "dir"
                    ) -> tuple[Path, Path]:
    """(old, new) releases of shop in ``layout``: ``dir`` (release roots), ``tar``
    (gzip tarballs) or ``ez`` (the shop application alone as an .ez archive)."""
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for version in ("v1", "v2"):
        files = shop_release_files(version, appup)
        if layout == "dir":
            out.append(write_files(work / f"rel-{version}", files))
        elif layout == "tar":
            out.append(build_tarball(work / f"shop-{version}.tar.gz", files))
        elif layout == "ez":
            vsn = "1.0" if version == "v1" else "1.1"
            path = work / f"shop-{vsn}.ez"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for rel, data in files.items():
                    if rel.startswith(f"lib/shop-{vsn}/"):
                        zf.writestr(rel[len("lib/"):], data)
            out.append(path)
        else:
            raise ValueError(layout)
    return out[0], out[1]


def simple_pair(work: Path, changed: int = 1, same: int = 3) -> tuple[Path, Path]:
    """Two lib trees of one application: ``same`` byte-identical modules and ``changed``
    modules that differ (no export removed)."""
    from release_fixtures import compile_modules
    old_specs = [(f"s_same{i}", "x") for i in range(same)] + \
        [(f"s_chg{i}", "old") for i in range(changed)]
    new_specs = [(f"s_same{i}", "x") for i in range(same)] + \
        [(f"s_chg{i}", "new") for i in range(changed)]
    beams = compile_modules(old_specs + new_specs)
    roots = []
    for label, specs, vsn in (("old", old_specs, "1.0"), ("new", new_specs, "1.1")):
        mods = {m: beams[(m, t)] for m, t in specs}
        roots.append(write_files(work / label, app_tree("simple", vsn, mods)))
    return roots[0], roots[1]


def shutil_which(name: str) -> str | None:
    import shutil
    return shutil.which(name)
