"""params.yaml is validated against the schema before any work; profiles are overlays of the default."""

import subprocess
import sys

import pytest
import yaml

from gdl.params import PROFILES, ParamsError, dump, load_params, profile
from tests.conftest import ROOT


def _keys(d, prefix=""):
    return {prefix + k for k in d} | {x for k, v in d.items() if isinstance(v, dict) for x in _keys(v, f"{prefix}{k}.")}


def test_committed_params_are_valid_and_complete():
    # Values may differ from the default profile (committing a param change is the metrics-diff workflow);
    # the sections and keys may not: every model of dvc.yaml has its section, and nothing else is there.
    committed = load_params(ROOT / "params.yaml")
    assert _keys(committed.model_dump()) == _keys(profile("default").model_dump())


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_is_valid(name, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(dump(profile(name)))
    assert load_params(path) == profile(name)


def test_smoke_profile_is_much_smaller_than_default():
    smoke, default = profile("smoke"), profile("default")
    assert smoke.vae.epochs < default.vae.epochs and smoke.realnvp.epochs < default.realnvp.epochs
    assert smoke.data.moons.n_samples < default.data.moons.n_samples
    wm_smoke, wm_default = smoke.world_models, default.world_models
    assert wm_smoke.rollouts.rollouts * wm_smoke.rollouts.max_steps < wm_default.rollouts.rollouts * wm_default.rollouts.max_steps
    assert wm_smoke.controller.real.generations < wm_default.controller.real.generations


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
    (lambda p: p["world_models"]["controller"]["dream"].update(temperature=0), "world_models.controller.dream.temperature",
     "greater than 0"),
    (lambda p: p["world_models"]["controller"]["real"].update(population=1), "world_models.controller.real.population",
     "greater than or equal to 2"),
    (lambda p: p["world_models"]["rollouts"].update(rollouts=33), "world_models.rollouts",
     "2 shards do not divide 33 rollouts"),
    (lambda p: p["world_models"]["rollouts"].update(shards=[0, 0]), "world_models.rollouts", "distinct ids"),
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


def test_unknown_model_section_is_rejected(tmp_path):
    path = _write(tmp_path, lambda p: p.update(vae_shapez={"epochs": 1}))
    with pytest.raises(ParamsError, match="vae_shapez"):
        load_params(path)


def test_a_missing_model_section_is_an_error_and_sync_adds_its_defaults(tmp_path):
    path = _write(tmp_path, lambda p: (p.pop("vae_shapes"), p["vae"].update(epochs=3), p.update(old_model={})))
    with pytest.raises(ParamsError, match=r"(?s)vae_shapes: Field required.*old_model.*gdl.params sync"):
        load_params(path)
    done = subprocess.run([sys.executable, "-m", "gdl.params", "sync", "--file", str(path)], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0 and "added vae_shapes; dropped old_model" in done.stdout
    params = load_params(path)
    assert params.vae_shapes.latent_dim == 16 and params.vae.epochs == 3  # defaults added, edits kept


def test_sync_adds_a_new_field_at_each_models_own_default(tmp_path):
    # A field a family gained after params.yaml was written: missing in every section of that family.
    path = _write(tmp_path, lambda p: [p[m].pop("classifier_weight") for m in ("dcgan", "wgan_gp", "cgan")]
                  + [p["cgan"].update(epochs=2)])
    done = subprocess.run([sys.executable, "-m", "gdl.params", "sync", "--file", str(path)], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0 and "cgan.classifier_weight" in done.stdout, done.stdout + done.stderr
    raw = yaml.safe_load(path.read_text())
    assert raw["cgan"]["classifier_weight"] == 3.0 and raw["dcgan"]["classifier_weight"] == 0.0
    keys = list(raw["cgan"])
    assert raw["cgan"]["epochs"] == 2 and keys.index("classifier_weight") == keys.index("critic_conditioning") + 1


def test_dvc_yaml_naming_an_unknown_family_is_an_error_naming_the_file(tmp_path):
    dvc = tmp_path / "dvc.yaml"
    dvc.write_text((ROOT / "dvc.yaml").read_text().replace("{family: realnvp,", "{family: realnvpp,"))
    with pytest.raises(ParamsError, match=r"dvc.yaml: vars.models.realnvp: .*realnvpp"):
        profile("default", dvc_file=dvc)


def test_model_seed_defaults_to_the_top_level_seed():
    from gdl.params import model_seed

    params = profile("default")
    assert model_seed(params, "vae") == params.seed
    assert model_seed(params.model_copy(update={"vae": params.vae.model_copy(update={"seed": 7})}), "vae") == 7
