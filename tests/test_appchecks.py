"""Application-level findings of the gate: an application removed, its start-up keys,
its registered names, its environment (.app env and sys.config, told through
config_change/3 or not), runtime.exs, and priv/ files with native libraries, on release
trees and tarballs built here from the bundled sample beams.  Each kind is held in both
directions: it appears for the change it names and not for the releases without it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from beaminspect.release.gate import compare_releases

ROOT = Path(__file__).resolve().parent.parent
EBIN = ROOT / "samples" / "ebin"
ONLOAD = ROOT / "samples" / "pairs" / "on_load_changed"

NEW_KINDS = {"application_removed", "app_start_changed", "app_registered_changed",
             "config_changed", "config_changed_no_callback", "runtime_config_changed",
             "priv_changed", "nif_library_not_reloaded"}


def _app(name="app", vsn="1.0", mods=("bi_app",), **props) -> str:
    keys = {"vsn": f'"{vsn}"', "modules": "[" + ",".join(mods) + "]",
            "applications": "[kernel,stdlib]"}
    keys.update(props)
    body = ",".join(f"{{{k},{v}}}" for k, v in keys.items())
    return f"{{application,{name},[{body}]}}.\n"


def _tree(root: Path, apps: dict, files: dict | None = None) -> Path:
    """``apps``: name -> (vsn, .app text, {module: beam path}); ``files``: more files by
    path below ``root`` (text or bytes)."""
    for name, (vsn, app_text, beams) in apps.items():
        ebin = root / "lib" / f"{name}-{vsn}" / "ebin"
        ebin.mkdir(parents=True)
        (ebin / f"{name}.app").write_text(app_text)
        for mod, path in beams.items():
            (ebin / f"{mod}.beam").write_bytes(Path(path).read_bytes())
    for rel, content in (files or {}).items():
        p = root / rel.format(**{n: f"{n}-{v[0]}" for n, v in apps.items()})
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return root


def _kinds(old: Path, new: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in compare_releases(old, new).findings:
        if f.kind in NEW_KINDS:
            out.setdefault(f.kind, []).append(f.message)
    return out


def _pair(tmp_path: Path, old_apps, new_apps, old_files=None, new_files=None):
    return (_tree(tmp_path / "old", old_apps, old_files),
            _tree(tmp_path / "new", new_apps, new_files))


APP = {"bi_app": EBIN / "bi_app.beam"}


def test_nothing_for_an_upgrade_that_changes_none_of_it(tmp_path):
    text = _app(mod="{bi_app,[]}", env="[{k,1}]", registered="[a]")
    files = {"lib/{app}/priv/lib.so": b"\x7fELF1", "releases/1/sys.config": "[{app,[{k,2}]}].",
             "releases/1/runtime.exs": "import Config\n"}
    old, new = _pair(tmp_path, {"app": ("1.0", text, APP)},
                     {"app": ("1.0", text, APP)}, files, files)
    assert _kinds(old, new) == {}


def test_a_removed_application_is_a_finding(tmp_path):
    old, new = _pair(tmp_path, {"app": ("1.0", _app(), APP),
                                "gone": ("1", _app("gone", "1", ["bi_flow"]),
                                         {"bi_flow": EBIN / "bi_flow.beam"})},
                     {"app": ("1.0", _app(), APP)})
    got = _kinds(old, new)
    assert list(got) == ["application_removed"]
    assert "gone 1" in got["application_removed"][0]


def test_start_up_keys(tmp_path):
    old, new = _pair(tmp_path, {"app": ("1.0", _app(mod="{bi_app,[]}"), APP)},
                     {"app": ("1.1", _app(vsn="1.1", mod="{bi_flow,[]}",
                                          applications="[kernel,stdlib,crypto]"), APP)})
    msg = _kinds(old, new)["app_start_changed"][0]
    assert "applications +crypto" in msg and "mod {bi_app,[]} -> {bi_flow,[]}" in msg
    assert "{restart_application, app}" in msg


def test_dependencies_in_another_order_are_no_change(tmp_path):
    old, new = _pair(tmp_path, {"app": ("1.0", _app(applications="[kernel,stdlib]"), APP)},
                     {"app": ("1.0", _app(applications="[stdlib,kernel]"), APP)})
    assert _kinds(old, new) == {}


def test_registered_names(tmp_path):
    old, new = _pair(tmp_path, {"app": ("1.0", _app(registered="[a]"), APP)},
                     {"app": ("1.0", _app(registered="[a,b]"), APP)})
    assert "(+b)" in _kinds(old, new)["app_registered_changed"][0]


def test_environment_told_through_config_change(tmp_path):
    """bi_app exports config_change/3: the change is told, at info."""
    old, new = _pair(tmp_path, {"app": ("1.0", _app(mod="{bi_app,[]}", env="[{k,1}]"), APP)},
                     {"app": ("1.0", _app(mod="{bi_app,[]}", env="[{k,2}]"), APP)})
    got = _kinds(old, new)
    assert list(got) == ["config_changed"]
    assert "bi_app:config_change/3" in got["config_changed"][0]


def test_environment_not_told_without_config_change(tmp_path):
    """bi_flow as the callback module exports no config_change/3; the change comes
    from sys.config alone."""
    beams = {"bi_app": EBIN / "bi_app.beam", "bi_flow": EBIN / "bi_flow.beam"}
    text = _app(mods=("bi_app", "bi_flow"), mod="{bi_flow,[]}", env="[{k,1}]")
    old, new = _pair(tmp_path, {"app": ("1.0", text, beams)}, {"app": ("1.0", text, beams)},
                     {"releases/1/sys.config": "[{app,[{k,1},{j,1}]}]."},
                     {"releases/1/sys.config": "[{app,[{k,1},{j,2}]}]."})
    got = _kinds(old, new)
    assert list(got) == ["config_changed_no_callback"]
    msg = got["config_changed_no_callback"][0]
    assert "(j, from sys.config" in msg and "bi_flow exports no config_change/3" in msg


def test_library_application_environment(tmp_path):
    old, new = _pair(tmp_path, {"app": ("1.0", _app(env="[{k,1}]"), APP)},
                     {"app": ("1.0", _app(env="[]"), APP)})
    assert "library application" in _kinds(old, new)["config_changed"][0]


def test_runtime_exs(tmp_path):
    same = {"releases/1/runtime.exs": "import Config\n"}
    old, new = _pair(tmp_path, {"app": ("1.0", _app(), APP)}, {"app": ("1.0", _app(), APP)},
                     same, {"releases/1/runtime.exs": "import Config\nconfig :app, k: 2\n"})
    assert list(_kinds(old, new)) == ["runtime_config_changed"]


def _onload(version: str) -> dict:
    return {"hl_on_load_changed": ONLOAD / version / "hl_on_load_changed.beam"}


def test_native_library_changed_without_its_loader(tmp_path):
    text = _app(mods=("hl_on_load_changed",))
    old, new = _pair(tmp_path, {"app": ("1.0", text, _onload("v1"))},
                     {"app": ("1.0", text, _onload("v1"))},
                     {"lib/{app}/priv/nif.so": b"one", "lib/{app}/priv/t.txt": "a"},
                     {"lib/{app}/priv/nif.so": b"two", "lib/{app}/priv/t.txt": "a",
                      "lib/{app}/priv/new.txt": "b"})
    got = _kinds(old, new)
    assert set(got) == {"priv_changed", "nif_library_not_reloaded"}
    assert "1 changed (nif.so); 1 added (new.txt)" in got["priv_changed"][0]
    assert "hl_on_load_changed" in got["nif_library_not_reloaded"][0]


def test_native_library_changed_with_its_loader(tmp_path):
    """The module whose on_load loads the library changes too: it is loaded again."""
    text = _app(mods=("hl_on_load_changed",))
    old, new = _pair(tmp_path, {"app": ("1.0", text, _onload("v1"))},
                     {"app": ("1.0", text, _onload("v2"))},
                     {"lib/{app}/priv/nif.so": b"one"}, {"lib/{app}/priv/nif.so": b"two"})
    got = _kinds(old, new)
    assert "priv_changed" in got and "nif_library_not_reloaded" not in got


def _tarball(tree: Path, dest: Path) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                tf.add(p, arcname=str(p.relative_to(tree)))
    dest.write_bytes(buf.getvalue())
    return dest


def test_priv_files_in_tarballs_compare_by_digest(tmp_path):
    text = _app(mods=("hl_on_load_changed",))
    old, new = _pair(tmp_path, {"app": ("1.0", text, _onload("v1"))},
                     {"app": ("1.0", text, _onload("v1"))},
                     {"lib/{app}/priv/nif.so": b"one", "lib/{app}/priv/same": b"x" * 5000},
                     {"lib/{app}/priv/nif.so": b"owt", "lib/{app}/priv/same": b"x" * 5000})
    a, b = _tarball(old, tmp_path / "old.tar.gz"), _tarball(new, tmp_path / "new.tar.gz")
    got = _kinds(a, b)
    assert "1 changed (nif.so)" in got["priv_changed"][0]
    assert "nif_library_not_reloaded" in got
    assert _kinds(a, a) == {}
