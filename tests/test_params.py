"""params.yaml is validated against the schema before any work; profiles are overlays of the default."""

import subprocess
import sys

import pytest
import yaml

from gdl.params import PROFILES, ParamsError, dump, load_params, profile
from tests.conftest import ROOT


def test_committed_params_are_the_default_profile():
    assert (ROOT / "params.yaml").read_text() == dump(profile("default"))


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_is_valid(name, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(dump(profile(name)))
    assert load_params(path) == profile(name)


def test_smoke_profile_is_much_smaller_than_default():
    smoke, default = profile("smoke"), profile("default")
    assert smoke.vae.epochs < default.vae.epochs and smoke.realnvp.epochs < default.realnvp.epochs
    assert smoke.data.moons.n_samples < default.data.moons.n_samples


def _write(tmp_path, mutate):
    raw = profile("default").model_dump()
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("mutate, key, words", [
    (lambda p: p["vae"].update(epochs="many"), "vae.epochs", "integer"),
    (lambda p: p["vae"].update(epochs=0), "vae.epochs", "greater than or equal to 1"),
    (lambda p: p["realnvp"].update(hiden_units=3), "realnvp.hiden_units", "Extra inputs"),
    (lambda p: p["data"]["digits"].update(source="web"), "data.digits.source", "'embedded' or 'book'"),
    (lambda p: p["preprocess"]["moons"].update(val_fraction=0.45, test_fraction=0.45), "preprocess.moons",
     "at least 20%"),
    (lambda p: p.pop("seed") and p.update(sed=1), "sed", "Extra inputs"),
])
def test_invalid_params_name_the_file_and_the_key(tmp_path, mutate, key, words):
    path = _write(tmp_path, mutate)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = str(err.value)
    assert str(path) in message and key in message and words in message


def test_unparseable_yaml_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("vae: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML"):
        load_params(path)


def test_check_cli_exit_codes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(dump(profile("smoke")))
    bad = _write(tmp_path, lambda p: p["vae"].update(beta=-1))
    ok = subprocess.run([sys.executable, "-m", "gdl.params", "check", "--file", str(good)], capture_output=True)
    fail = subprocess.run([sys.executable, "-m", "gdl.params", "check", "--file", str(bad)],
                          capture_output=True, text=True)
    assert ok.returncode == 0
    assert fail.returncode == 1 and "vae.beta" in fail.stderr and str(bad) in fail.stderr
