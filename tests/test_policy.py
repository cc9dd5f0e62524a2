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


# --- policy where projects keep it ---------------------------------------------------

README_BLOCK = '''[tool.beaminspect]
fail_on = "warning"
external = ["cowboy", "ranch"]

[tool.beaminspect.severity]
load_order = "info"
fun_invalidated = "error"
'''


@pytest.mark.parametrize("name", ["pol.toml", "pyproject.toml", "beaminspect.toml"])
def test_policy_file_with_the_readme_block(tmp_path, name):
    from beaminspect.release.policy import load_policy
    p = tmp_path / name
    p.write_text(README_BLOCK)
    pol = load_policy(str(p))
    assert pol.fail_on == "warning" and pol.external == {"cowboy", "ranch"}
    assert pol.severities == {"load_order": "info", "fun_invalidated": "error"}


def test_policy_found_upward_beaminspect_toml_first(tmp_path):
    from beaminspect.release.policy import load_policy
    (tmp_path / "rebar.config").write_text("{erl_opts, []}.\n")
    (tmp_path / "beaminspect.toml").write_text('fail_on = "info"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.beaminspect]\nfail_on = "never"\n')
    sub = tmp_path / "apps" / "shop"
    sub.mkdir(parents=True)
    pol = load_policy(start=str(sub))
    assert pol.fail_on == "info" and pol.source == str(tmp_path / "beaminspect.toml")
    # A pyproject.toml without the table does not stop the search.
    (sub / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_policy(start=str(sub)).fail_on == "info"


def test_unknown_key_and_kind_name_the_valid_ones(tmp_path):
    from beaminspect.release.policy import PolicyError, load_policy
    p = tmp_path / "beaminspect.toml"
    p.write_text("fail_onn = 'info'\n")
    with pytest.raises(PolicyError, match=r"unknown key fail_onn \(known: severity, fail_on, external\)"):
        load_policy(str(p))
    p.write_text("[severity]\nfun_invalid = 'off'\n")
    with pytest.raises(PolicyError, match=r"unknown finding kind 'fun_invalid'.*beaminspect kinds"):
        load_policy(str(p))
