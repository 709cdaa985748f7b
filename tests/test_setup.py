"""Set-up files agree with each other and with the README."""

import json
import re
import sys
import tomllib

import yaml

from tests.conftest import ROOT


def test_environment_yml_pins_the_same_versions_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {d.split(";")[0].strip() for d in project if "sys_platform != 'linux'" not in d}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == pins
    assert all("==" in p for p in pins)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## ")[1]
    commands = re.findall(r"^(make \w+)", quick_start, re.M)
    assert commands[:2] == ["make repro", "make test"]
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_readme_results_table_is_the_pipelines_own():
    readme = (ROOT / "README.md").read_text()
    table = (ROOT / "reports/results.md").read_text().strip()
    assert table in readme


def test_readme_world_models_table_is_the_committed_metrics():
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import world_models_table

    metrics = json.loads((ROOT / "metrics/world_models.json").read_text())
    assert world_models_table(metrics) in (ROOT / "README.md").read_text()


def test_readme_sequence_models_table_is_the_committed_metrics():
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import sequences_table

    assert sequences_table(ROOT / "metrics") in (ROOT / "README.md").read_text()


def test_readme_diffusion_tables_are_the_committed_metrics():
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import diffusion_tables

    assert diffusion_tables(ROOT / "metrics") in (ROOT / "README.md").read_text()
