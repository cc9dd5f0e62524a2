"""``mix release`` builds read as the VM reads them: the boot script's code path puts the
release's consolidated protocols first, so the ``lib/elixir-*/ebin`` copies are not
duplicates; a protocol whose implementations change is a changed consolidated module
with its own finding.  Three versions of a small project are built here with the host's
mix (a body change in an implementation, then an implementation added)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from beaminspect.release.gate import compare_releases
from beaminspect.release.layout import open_release

pytestmark = pytest.mark.skipif(shutil.which("mix") is None,
                                reason="Elixir's mix is not installed: the test builds "
                                       "mix releases")

PROTO = """defprotocol Shop.Describe do
  def describe(x)
end
defimpl Shop.Describe, for: Integer do
  def describe(x), do: "%s #{x}"
end
"""
ATOM_IMPL = """defimpl Shop.Describe, for: Atom do
  def describe(x), do: "atom #{x}"
end
"""


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("mix")
    env = {**os.environ, "MIX_ENV": "prod", "HOME": str(work / "home"),
           "MIX_HOME": str(work / "home" / ".mix")}
    (work / "home").mkdir()
    subprocess.run(["mix", "new", "shop", "--sup"], cwd=work, env=env, check=True,
                   capture_output=True, timeout=300)
    project = work / "shop"
    out = {}
    for vsn, word, extra in (("0.1.0", "int", ""), ("0.1.1", "integer", ""),
                             ("0.1.2", "integer", ATOM_IMPL)):
        mix_exs = project / "mix.exs"
        text = mix_exs.read_text()
        import re
        mix_exs.write_text(re.sub(r'version: "[^"]*"', f'version: "{vsn}"', text))
        (project / "lib" / "shop" / "proto.ex").write_text(PROTO % word + extra)
        # Forced: mix judges staleness by mtimes, and these edits come within a second.
        r = subprocess.run(["mix", "do", "compile", "--force", "+", "release", "--overwrite"],
                           cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        dest = work / f"rel-{vsn}"
        shutil.copytree(project / "_build" / "prod" / "rel" / "shop", dest, symlinks=True)
        out[vsn] = dest
    return out


def test_consolidated_protocols_are_used_not_duplicates(releases):
    rel = open_release(releases["0.1.2"])
    assert "/releases/0.1.2/consolidated/" in rel.modules["Elixir.Enumerable"].path
    assert "/releases/0.1.2/consolidated/" in rel.modules["Elixir.Shop.Describe"].path
    assert rel.duplicates == []


def test_a_body_change_gates_with_no_false_finding(releases):
    r = compare_releases(releases["0.1.0"], releases["0.1.1"])
    assert [c.name for c in r.modules.values() if c.status == "changed"] == \
        ["Elixir.Shop.Describe.Integer"]
    loud = {(f.kind, f.module) for f in r.findings if f.severity != "info"}
    # The only finding at warning or above is true: no appup for a version change.
    assert loud == {("appup_missing", None)}
    assert not [f for f in r.findings if f.kind == "duplicate_module"]


def test_an_added_implementation_changes_the_protocol_dispatch(releases):
    r = compare_releases(releases["0.1.1"], releases["0.1.2"])
    [f] = [f for f in r.findings if f.kind == "protocol_dispatch_changed"]
    assert f.module == "Elixir.Shop.Describe" and f.severity == "info"
    assert "added Elixir.Atom" in f.message
    back = compare_releases(releases["0.1.2"], releases["0.1.1"])
    [g] = [f for f in back.findings if f.kind == "protocol_dispatch_changed"]
    assert g.severity == "warning" and "removed Elixir.Atom" in g.message


def test_tarballs_give_the_same_answer(releases, tmp_path):
    tars = []
    for vsn in ("0.1.1", "0.1.2"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            tf.add(releases[vsn], arcname=".")
        p = tmp_path / f"shop-{vsn}.tar.gz"
        p.write_bytes(buf.getvalue())
        tars.append(p)
    a = compare_releases(*tars)
    b = compare_releases(releases["0.1.1"], releases["0.1.2"])
    key = lambda f: (f.kind, f.module or "", f.severity)  # noqa: E731
    assert sorted(map(key, a.findings)) == sorted(map(key, b.findings))
