"""Reading releases: layouts, archives, hostile archives, limits."""

from __future__ import annotations

import io
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from beaminspect.errors import BeamError, FormatError, LimitError
from beaminspect.release.layout import Limits, open_release, version_key

import release_fixtures as rf

ALL_MODULES = {"alpha_app", "alpha_srv", "beta", "beta_util", "gamma"}


def test_lib_tree(tmp_path):
    lib = rf.build_lib_tree(tmp_path)
    rel = open_release(lib)
    assert set(rel.modules) == ALL_MODULES
    assert set(rel.apps) == {"alpha", "beta", "gamma"}
    alpha = rel.apps["alpha"]
    assert alpha.vsn == "1.0"
    assert alpha.modules == ["alpha_app", "alpha_srv"]
    assert alpha.declared_modules == ["alpha_app", "alpha_srv"]
    assert alpha.appup is not None and alpha.appup_error is None
    assert alpha.appup[0][0] == [ord(c) for c in "1.0"]
    assert alpha.appup_path.endswith("lib/alpha-1.0/ebin/alpha.appup")
    assert rel.apps["gamma"].appup is None and rel.apps["gamma"].appup_path is None
    assert rel.apps["beta"].app_property("applications") == ["kernel", "stdlib"]
    src = rel.modules["beta_util"]
    assert (src.app, src.app_vsn) == ("beta", "2.1")
    assert src.read() == (lib / "beta-2.1" / "ebin" / "beta_util.beam").read_bytes()
    assert src.size == len(src.read())
    assert rel.warnings == [] and rel.duplicates == []
    assert rel.current_rel is None


def test_directory_reads_are_lazy_and_go_through_file_reader(tmp_path):
    lib = rf.build_lib_tree(tmp_path)
    calls = []

    def reader(path):
        calls.append(path)
        return Path(path).read_bytes()

    rel = open_release(lib, file_reader=reader)
    assert not any(c.endswith(".beam") for c in calls)
    data = rel.modules["gamma"].read()
    assert data[:4] == b"FOR1"
    assert calls[-1].endswith("gamma.beam")


def test_content_hash_is_cached_and_recognises_identical_files(tmp_path):
    rf.build_lib_tree(tmp_path / "a")
    rf.build_lib_tree(tmp_path / "b")
    ra, rb = open_release(tmp_path / "a"), open_release(tmp_path / "b")
    for name in ALL_MODULES:
        assert ra.modules[name].content_hash() == rb.modules[name].content_hash()
    assert ra.modules["beta"].content_hash() != ra.modules["beta_util"].content_hash()
    calls = []
    rc = open_release(tmp_path / "a", file_reader=lambda p: calls.append(p) or b"x")
    rc.modules["gamma"].content_hash()
    rc.modules["gamma"].content_hash()
    assert len([c for c in calls if c.endswith("gamma.beam")]) == 1


def test_release_root_with_rel_and_superseded_versions(tmp_path):
    rf.build_release_root(tmp_path, rel_vsn="1.1", old_versions={"alpha": "0.9"})
    rel = open_release(tmp_path)
    assert rel.current_rel is not None
    assert (rel.current_rel.name, rel.current_rel.vsn, rel.current_rel.erts_vsn) == \
        ("demo", "1.1", "13.1.5")
    assert ("alpha", "1.0") in rel.current_rel.apps
    assert rel.apps["alpha"].vsn == "1.0"
    assert rel.modules["alpha_srv"].app_vsn == "1.0"
    assert rel.duplicates == []
    kinds = [w.kind for w in rel.warnings]
    assert kinds == ["superseded_app"]
    assert "alpha 0.9" in rel.warnings[0].message


def test_rel_version_chosen_by_start_erl_data_and_argument(tmp_path):
    files = rf.release_files(rel_vsn="1.0", old_versions={"beta": "2.0"})
    # an older release that used beta 2.0
    files["releases/0.9/demo.rel"] = rf.rel_text(
        "demo", "0.9", {"alpha": "1.0", "beta": "2.0", "gamma": "0.3"}).encode()
    rf._write(tmp_path, files)
    assert open_release(tmp_path).apps["beta"].vsn == "2.1"        # start_erl.data: 1.0
    old = open_release(tmp_path, rel_vsn="0.9")
    assert old.current_rel.vsn == "0.9"
    assert old.apps["beta"].vsn == "2.0"
    assert old.modules["beta"].path.endswith("lib/beta-2.0/ebin/beta.beam")
    assert len(old.rels) == 2


def test_without_rel_the_highest_version_wins(tmp_path):
    rf.build_lib_tree(tmp_path, {"alpha": ("1.10", ["alpha_srv"], None)})
    rf.build_lib_tree(tmp_path, {"alpha": ("1.9", ["alpha_srv"], None)})
    rel = open_release(tmp_path)
    assert rel.apps["alpha"].vsn == "1.10"
    assert [w.kind for w in rel.warnings] == ["superseded_app"]


def test_version_key_orders_numerically():
    assert sorted(["1.10", "1.9", "1.9.1", "2.0-rc1", "2.0"], key=version_key) == \
        ["1.9", "1.9.1", "1.10", "2.0", "2.0-rc1"]


@pytest.mark.parametrize("profile", ["default", "prod", "dev"])
def test_rebar3_and_mix_build_trees(tmp_path, profile):
    build = rf.build_build_tree(tmp_path, profile)
    for root in (tmp_path, build, build / profile / "lib"):
        rel = open_release(root)
        assert set(rel.modules) == ALL_MODULES
        assert rel.apps["beta"].vsn == "2.1"                 # from beta.app
        assert rel.apps["alpha"].path.endswith("lib/alpha")
        assert rel.warnings == []


def test_single_app_directory(tmp_path):
    rf.build_build_tree(tmp_path)
    rel = open_release(tmp_path / "_build" / "default" / "lib" / "alpha")
    assert set(rel.apps) == {"alpha"} and set(rel.modules) == {"alpha_app", "alpha_srv"}


def test_flat_directory_and_single_beam(tmp_path):
    flat = rf.build_flat_dir(tmp_path / "flat")
    rel = open_release(flat)
    assert set(rel.modules) == {"m_one", "m_two"}
    assert rel.modules["m_one"].app is None and rel.apps == {}
    one = open_release(flat / "m_two.beam")
    assert list(one.modules) == ["m_two"]


def test_duplicates_across_profiles(tmp_path):
    rf.build_build_tree(tmp_path, "default")
    rf.build_build_tree(tmp_path, "test")
    rel = open_release(tmp_path / "_build")
    # same app name twice at the same version: one kept, the other left out
    assert set(rel.modules) == ALL_MODULES


def test_duplicate_module_in_two_apps(tmp_path):
    rf.build_lib_tree(tmp_path, {"one": ("1.0", ["shared", "one"], None),
                                 "two": ("1.0", ["shared"], None)})
    rel = open_release(tmp_path)
    assert [name for name, _ in rel.duplicates] == ["shared"]
    srcs = rel.duplicates[0][1]
    assert [s.app for s in srcs] == ["one", "two"]
    assert rel.modules["shared"] is srcs[0]
    assert any(w.kind == "duplicate_module" for w in rel.warnings)


def test_beams_from_samples_if_present(tmp_path):
    samples = rf.sample_beams()
    if not samples:
        pytest.skip("samples/ebin has no beams yet")
    ebin = tmp_path / "lib" / "samples-1.0" / "ebin"
    ebin.mkdir(parents=True)
    for name, data in samples.items():
        (ebin / f"{name}.beam").write_bytes(data)
    rel = open_release(tmp_path)
    assert set(rel.modules) == set(samples)
    assert all(rel.modules[n].read() == d for n, d in samples.items())


def test_malformed_app_and_appup_become_warnings(tmp_path):
    apps = {"bad": ("1.0", ["bad"], '{"1.0", [{"0.9", [{load_module, bad}]}], [].\n')}
    rf.build_lib_tree(tmp_path, apps)
    (tmp_path / "lib/bad-1.0/ebin/bad.app").write_text("{application, bad, [{vsn, V}]}.\n")
    rel = open_release(tmp_path)
    app = rel.apps["bad"]
    assert app.app_file_terms is None and isinstance(app.app_error, FormatError)
    assert app.vsn == "1.0"                                   # from the directory name
    assert isinstance(app.appup_error, FormatError) and app.appup is None
    assert app.appup_error.file.endswith("bad.appup")
    assert app.appup_error.offset is not None
    kinds = sorted(w.kind for w in rel.warnings)
    assert kinds == ["bad_app_file", "bad_appup"]
    assert "bad" in rel.modules


# -- archives -----------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gz", "", "xz"])
def test_tarball_systools_layout(tmp_path, compression):
    suffix = {"gz": ".tar.gz", "": ".tar", "xz": ".tar.xz"}[compression]
    files = rf.systools_layout(old_versions={"gamma": "0.2"})
    tar = rf.build_tarball(tmp_path / f"demo{suffix}", files, compression)
    rel = open_release(tar)
    assert set(rel.modules) == ALL_MODULES
    assert rel.apps["gamma"].vsn == "0.3"
    assert rel.current_rel.name == "demo"
    src = rel.modules["alpha_srv"]
    assert src.path == f"{tar}!lib/alpha-1.0/ebin/alpha_srv.beam"
    assert src.read() == files["lib/alpha-1.0/ebin/alpha_srv.beam"]
    assert rel.apps["beta"].appup is not None
    assert [w.kind for w in rel.warnings] == ["superseded_app"]


def test_tgz_suffix_and_dir_agree(tmp_path):
    files = rf.release_files()
    tar = rf.build_tarball(tmp_path / "demo.tgz", files)
    rf._write(tmp_path / "root", files)
    a, b = open_release(tar), open_release(tmp_path / "root")
    assert set(a.modules) == set(b.modules)
    for name in a.modules:
        assert a.modules[name].content_hash() == b.modules[name].content_hash()
    assert a.current_rel.apps == b.current_rel.apps


def test_ez_archive(tmp_path):
    ez = rf.build_ez(tmp_path / "delta-0.5.ez")
    rel = open_release(ez)
    assert set(rel.modules) == {"delta", "delta_sup"}
    assert rel.apps["delta"].vsn == "0.5"
    assert rel.modules["delta"].path == f"{ez}!delta-0.5/ebin/delta.beam"


def test_ez_nested_in_tarball_and_in_release_lib(tmp_path):
    files = rf.release_files()
    files["lib/delta-0.5.ez"] = rf.ez_bytes()
    tar = rf.build_tarball(tmp_path / "rel.tar.gz", files)
    rel = open_release(tar)
    assert ALL_MODULES | {"delta", "delta_sup"} == set(rel.modules)
    assert rel.modules["delta"].path == \
        f"{tar}!lib/delta-0.5.ez!delta-0.5/ebin/delta.beam"
    assert rel.apps["delta"].vsn == "0.5"
    rf._write(tmp_path / "root", files)
    rel2 = open_release(tmp_path / "root")
    assert rel2.modules["delta"].content_hash() == rel.modules["delta"].content_hash()


def test_archive_in_archive_in_archive_is_skipped(tmp_path):
    inner = rf.ez_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("outer-1.0/deep.ez", inner)
    files = {"lib/outer.ez": buf.getvalue()}
    rel = open_release(rf.build_tarball(tmp_path / "n.tar.gz", files))
    assert rel.modules == {}
    assert [w.kind for w in rel.warnings] == ["nested_archive"]


@pytest.mark.otp
@pytest.mark.skipif(not rf.HAVE_ERL, reason="Erlang/OTP (erl) is not installed")
def test_tarball_made_by_systools_make_tar(tmp_path):
    tar = rf.build_systools_tar(tmp_path)
    rel = open_release(tar)
    assert {"alpha", "beta", "kernel", "stdlib"} <= set(rel.apps)
    assert {"alpha_srv", "beta", "lists", "gen_server", "code"} <= set(rel.modules)
    assert rel.current_rel.name == "demo"
    assert dict(rel.current_rel.apps)["alpha"] == "1.0"
    assert rel.apps["stdlib"].vsn == dict(rel.current_rel.apps)["stdlib"]
    assert rel.modules["lists"].read()[:4] in (b"FOR1", b"\x1f\x8b\x08\x00")
    assert rel.warnings == []
    assert rel.apps["kernel"].declared_modules and \
        set(rel.apps["kernel"].modules) <= set(rel.apps["kernel"].declared_modules)


# -- hostile archives -------------------------------------------------------------------


def test_hostile_tar_members_refused_nothing_written(tmp_path, monkeypatch):
    tar = rf.build_hostile_tar(tmp_path / "hostile.tar.gz")
    monkeypatch.chdir(tmp_path)
    before = rf.snapshot(tmp_path)
    parent_before = rf.snapshot(tmp_path.parent)
    rel = open_release(tar)
    assert rf.snapshot(tmp_path) == before
    assert rf.snapshot(tmp_path.parent) == parent_before
    assert set(rel.modules) == {"good"}
    refused = {w.path.split("!", 1)[1]: w.message for w in rel.warnings}
    assert all(w.kind == "unsafe_member" for w in rel.warnings)
    assert set(refused) == {"../evil.beam", "lib/safe-1.0/ebin/../../../../evil2.beam",
                            "/abs.beam", "lib/safe-1.0/ebin/link.beam",
                            "lib/safe-1.0/ebin/hard.beam", "lib/safe-1.0/ebin/dev.beam"}
    assert "symbolic link" in refused["lib/safe-1.0/ebin/link.beam"]
    assert "hard link" in refused["lib/safe-1.0/ebin/hard.beam"]
    assert "device" in refused["lib/safe-1.0/ebin/dev.beam"]
    assert "absolute" in refused["/abs.beam"]
    assert "'..'" in refused["../evil.beam"]


def test_hostile_zip_members_refused(tmp_path):
    z = rf.build_hostile_zip(tmp_path / "hostile.ez")
    before = rf.snapshot(tmp_path)
    rel = open_release(z)
    assert rf.snapshot(tmp_path) == before
    assert set(rel.modules) == {"fine"}
    assert sorted(w.path.split("!", 1)[1] for w in rel.warnings) == \
        ["../evil.beam", "/abs.beam", "safe-1.0/ebin/link.beam"]


def test_member_claiming_10_gb(tmp_path):
    tar = rf.build_huge_claim_tar(tmp_path / "huge.tar.gz")
    assert tar.stat().st_size < 2000
    with pytest.raises(LimitError) as ei:
        open_release(tar)
    assert ei.value.file == str(tar)
    assert "10737418240" in ei.value.reason and "member limit" in ei.value.reason


def _count_tar_reads(monkeypatch) -> list:
    """Count the compressed bytes the tar reader takes from its file (``[n]``)."""
    real_open = tarfile.open
    read = [0]

    class Counting:
        def __init__(self, f):
            self._f = f

        def read(self, n=-1):
            b = self._f.read(n)
            read[0] += len(b)
            return b

        def __getattr__(self, name):
            return getattr(self._f, name)

    def counting_open(*args, fileobj=None, **kw):
        return real_open(*args, fileobj=Counting(fileobj), **kw)

    monkeypatch.setattr(tarfile, "open", counting_open)
    return read


def test_gzip_bomb_is_refused_from_the_header_and_small(tmp_path, monkeypatch):
    bomb = rf.build_gzip_bomb(tmp_path / "bomb.tar.gz")
    assert bomb.stat().st_size < 2 * 2**20                   # ~300 KB for 300 MB
    before = rf.snapshot(tmp_path)
    read = _count_tar_reads(monkeypatch)
    tracemalloc.start()
    with pytest.raises(LimitError):
        open_release(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Refused from the member header: a few blocks of the ~300 KB read, nothing inflated.
    assert 0 < read[0] <= 64 * 1024
    assert peak < 20 * 2**20
    assert rf.snapshot(tmp_path) == before


def test_gzip_bomb_under_member_limit_is_bounded_by_total_limit(tmp_path):
    bomb = rf.build_gzip_bomb(tmp_path / "bomb.tar.gz", member_size=40 * 2**20)
    limits = Limits(max_member_size=64 * 2**20, max_total_size=32 * 2**20)
    with pytest.raises(LimitError, match="add up to more than"):
        open_release(bomb, limits=limits)
    # Within the limits it is read, and the module really has all its bytes.
    rel = open_release(bomb, limits=Limits(max_member_size=64 * 2**20))
    assert rel.modules["bomb"].size == 40 * 2**20


def test_member_count_limit(tmp_path):
    files = {f"lib/many-1.0/ebin/m{i}.beam": b"FOR1" for i in range(50)}
    tar = rf.build_tarball(tmp_path / "many.tar", files, "")
    with pytest.raises(LimitError, match="more than 20 archive members"):
        open_release(tar, limits=Limits(max_members=20))
    assert len(open_release(tar).modules) == 50


def test_zip_sizes_checked_from_central_directory(tmp_path):
    z = tmp_path / "big.ez"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big-1.0/ebin/big.beam", b"\0" * (2 * 2**20))
    with pytest.raises(LimitError):
        open_release(z, limits=Limits(max_member_size=2**20))


@pytest.mark.parametrize("content", [b"", b"not an archive at all" * 10,
                                     b"\x1f\x8b\x08\x00garbage", b"PK\x03\x04broken"])
def test_junk_archives_raise_beam_errors(tmp_path, content):
    p = tmp_path / "junk.tar.gz"
    p.write_bytes(content)
    with pytest.raises(BeamError):
        open_release(p)


def test_truncated_tarball(tmp_path):
    tar = rf.build_tarball(tmp_path / "t.tar.gz", rf.release_files())
    data = tar.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        open_release(cut)


def test_missing_path():
    with pytest.raises(BeamError, match="no such file"):
        open_release("/nonexistent/release.tar.gz")


def test_repeated_member_last_copy_wins(tmp_path):
    tar = tmp_path / "rep.tar"
    with tarfile.open(tar, "w") as tf:
        rf._tar_add(tf, "lib/r-1.0/ebin/r.beam", b"FOR1first")
        rf._tar_add(tf, "lib/r-1.0/ebin/r.beam", b"FOR1second")
    rel = open_release(tar)
    assert rel.modules["r"].read() == b"FOR1second"
    assert [w.kind for w in rel.warnings] == ["repeated_member"]
    assert rel.duplicates == []


@pytest.mark.parametrize("compression", ["gz", ""])
def test_truncated_tarball_at_every_kind_of_cut(tmp_path, compression):
    files = {"lib/t-1.0/ebin/a.beam": b"FOR1" + b"a" * 1000,
             "lib/t-1.0/ebin/b.beam": b"FOR1" + b"b" * 600}
    tar = rf.build_tarball(tmp_path / "t.tar", files, "")
    raw = tar.read_bytes()
    assert len(open_release(tar).modules) == 2
    cut = tmp_path / "cut.tar"
    with tarfile.open(tar) as tf:
        last = max(m.offset_data + m.size for m in tf.getmembers())
    end_marker = -(-last // 512) * 512
    # inside a header, at a header boundary, inside member data, inside the end marker
    for n in (512 * 3 + 100, 512 * 5, 512 * 5 + 300, end_marker, end_marker + 100):
        data = raw[:n]
        if compression:
            data = rf._gzip(data)
        cut.write_bytes(data)
        with pytest.raises(FormatError):
            open_release(cut)


def test_unreadable_files_raise_read_error(tmp_path):
    import beaminspect
    from beaminspect.errors import ReadError
    from beaminspect.format.reader import read_file
    missing = tmp_path / "missing.beam"
    with pytest.raises(ReadError) as ei:
        beaminspect.load(missing)
    assert ei.value.kind == "io" and str(ei.value) == f"{missing}: No such file or directory"
    with pytest.raises(ReadError, match="no such file or directory"):
        open_release(tmp_path / "nope")
    (tmp_path / "ten").write_bytes(b"0123456789")
    assert read_file(str(tmp_path / "ten"), 10) == b"0123456789"
    with pytest.raises(LimitError, match="file is 10 bytes, larger than the 9 accepted"):
        read_file(str(tmp_path / "ten"), 9)


def test_a_bare_ebin_with_its_app_file_is_that_application(tmp_path):
    """``gate OLD/ebin NEW/ebin``: the .app file makes the directory an application (named
    by it; the directory above names it otherwise), so its .appup is checked."""
    from beaminspect.release.gate import compare_releases
    from beaminspect.release.layout import open_release
    from release_fixtures import bare_app_pair
    old, new = bare_app_pair(tmp_path)
    rel = open_release(new)
    assert list(rel.apps) == ["shop"] and rel.modules["hl_export_removed"].app == "shop"
    kinds = {f.kind for f in compare_releases(old, new).findings}
    assert "appup_missing" in kinds
    (new / "shop.appup").write_text(
        '{"1.1", [{"1.0", [{load_module, hl_export_removed}]}], '
        '[{"1.0", [{load_module, hl_export_removed}]}]}.\n')
    kinds = {f.kind for f in compare_releases(old, new).findings}
    assert "appup_missing" not in kinds and "appup_missing_module" not in kinds
    # Without a .app file an ebin stays a plain directory of modules.
    (old / "shop.app").unlink()
    assert open_release(old).apps == {}
