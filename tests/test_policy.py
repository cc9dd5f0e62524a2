"""Policy files: pyproject.toml's [tool.beaminspect], --policy files, errors."""

from __future__ import annotations

import pytest

from beaminspect.cli.app import main
from beaminspect.release.policy import Policy, PolicyError, find_pyproject, load_policy, parse_policy


def test_defaults_without_any_file(tmp_path):
    p = load_policy(start=str(tmp_path / "nowhere-near-a-pyproject"))
    # tmp dirs may sit under a directory with a pyproject.toml; only check the type then
    assert isinstance(p, Policy)


def test_policy_file_top_level_keys(tmp_path):
    f = tmp_path / "gate.toml"
    f.write_text('fail_on = "warning"\nexternal = ["cowboy", "ranch"]\n'
                 '[severity]\nload_order = "off"\nappup_missing = "info"\n'
                 'purge_kills_local_loop = "warning"\n')
    p = load_policy(str(f))
    assert p.fail_on == "warning"
    assert p.external == frozenset({"cowboy", "ranch"})
    assert p.severities == {"load_order": "off", "appup_missing": "info",
                            "purge_kills_local_loop": "warning"}
    assert p.source == str(f)


def test_pyproject_in_a_parent_directory(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.beaminspect]\nfail_on = "info"\n'
        '[tool.beaminspect.severity]\nmodule_moved_app = "error"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert find_pyproject(str(sub)) == str(tmp_path / "pyproject.toml")
    p = load_policy(start=str(sub))
    assert p.fail_on == "info"
    assert p.severities == {"module_moved_app": "error"}


def test_pyproject_without_a_table_is_the_default(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_policy(start=str(tmp_path)) == Policy()


@pytest.mark.parametrize("text, key", [
    ('[severity]\nno_such_kind = "error"\n', "severity.no_such_kind"),
    ('[severity]\nload_order = "fatal"\n', "severity.load_order"),
    ('fail_on = "sometimes"\n', "fail_on"),
    ('external = "x"\nfail_ob = "error"\n', "fail_ob"),
    ('external = [1, 2]\n', "external"),
    ('severity = "error"\n', "severity"),
])
def test_bad_policies_name_the_key(tmp_path, text, key):
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(PolicyError) as ei:
        load_policy(str(f))
    assert ei.value.key == key
    assert key.split(".")[-1] in str(ei.value)
    assert str(f) in str(ei.value)


def test_bad_key_in_pyproject_is_prefixed(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.beaminspect]\nfailon = "x"\n')
    with pytest.raises(PolicyError) as ei:
        load_policy(start=str(tmp_path))
    assert ei.value.key == "tool.beaminspect.failon"


def test_invalid_toml_and_missing_file(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("fail_on = \n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(str(f))
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(str(tmp_path / "missing.toml"))


def test_parse_policy_accepts_one_external_string():
    assert parse_policy({"external": "vendored"}).external == frozenset({"vendored"})


@pytest.mark.parametrize("text", ['[severity]\nbogus_kind = "error"\n', "x = [\n"])
def test_cli_bad_policy_exits_3(tmp_path, capsys, text):
    f = tmp_path / "p.toml"
    f.write_text(text)
    a = tmp_path / "a"
    a.mkdir()
    rc = main(["gate", str(a), str(a), "--policy", str(f)])
    assert rc == 3
    err = capsys.readouterr().err
    assert "policy" in err and str(f) in err
    assert "Traceback" not in err
