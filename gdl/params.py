"""Every knob of the pipeline, with its type, range and default, in one schema.

`params.yaml` is what DVC tracks and what users edit; this module is what checks it. Each stage calls
`load_params()` before it does any work, so a wrong type, an unknown key or an out-of-range value stops
the run with an error naming the file and the key, before a single output is touched.

The defaults below (and each family's, gdl/families/<name>/__init__.py) ARE the default profile (finishes on
2 CPU cores); model sections follow dvc.yaml's `models` var. Other profiles are small overlays:
`smoke` (seconds per stage, for tests) and `book` (the 2nd-edition notebooks' settings). Switch with

    python -m gdl.params use smoke      # rewrites params.yaml
    python -m gdl.params check          # validates params.yaml, exit code 1 on error
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

PARAMS_FILE = Path("params.yaml")


class Section(BaseModel):
    # Unknown keys are typos until proven otherwise.
    model_config = ConfigDict(extra="forbid", validate_default=True)


Fraction = Field(gt=0.0, lt=0.5)


# ---------------------------------------------------------------- data: acquire ---------------------
class DigitsData(Section):
    source: Literal["embedded", "book"] = "embedded"  # book: MNIST, fetched with a pinned SHA-256


class MoonsData(Section):
    n_samples: int = Field(30_000, ge=100)
    noise: float = Field(0.05, ge=0.0, le=1.0)


class ShapesData(Section):
    n_samples: int = Field(6_000, ge=50)
    image_size: int = Field(32, ge=16, le=128)


class TextData(Section):
    # embedded: CPython's pydoc topics (offline). The book's corpora (Kaggle datasets: Kaggle wants an account,
    # so download the archive yourself and point `url` at it, e.g. file:///data/epirecipes.zip, or at a mirror):
    #   recipes       Epicurious "full_format_recipes.json" (hugodarwood/epirecipes), the chapter 5 LSTM's data
    #   wine_reviews  "winemag-data-130k-v2.json" (zynicide/wine-reviews), the chapter 9 GPT's data
    # The archive (a .zip holding the JSON, or the JSON itself) is checked against `sha256` before it is opened.
    source: Literal["embedded", "recipes", "wine_reviews"] = "embedded"
    url: str | None = None  # None: the Kaggle download URL of the source
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    min_chars: int = Field(200, ge=0)  # drop stub documents shorter than this (embedded source)

    @model_validator(mode="after")
    def _pinned(self):
        if self.source != "embedded" and self.sha256 is None:
            raise ValueError(f"source {self.source!r} needs `sha256`: the SHA-256 of the archive you downloaded "
                             "(sha256sum <file>), so that a corrupt or different file is refused")
        return self


class ChoralesData(Section):
    # embedded: music21's bundled Bach chorales (offline). jsb: the book's MuseGAN data, Jsb16thSeparated.npz
    # (czhuang/JSB-Chorales-dataset). midi: your own MIDI files, e.g. the book's Bach cello suites
    # (http://www.jsbach.net/midi/cs1-1pre.mid ... cs6-6gig.mid), each pinned by its SHA-256 (sha256sum <file>).
    # Every download is checked against its SHA-256 before it is opened (gdl/download.py).
    source: Literal["embedded", "jsb", "midi"] = "embedded"
    max_files: int = Field(0, ge=0)  # 0 = every chorale (embedded, jsb) or every URL (midi)
    jsb_url: str = "https://github.com/czhuang/JSB-Chorales-dataset/raw/master/Jsb16thSeparated.npz"
    jsb_sha256: str = Field("2adcdf0d57880c3763f104555072285fe7f9e3d6049fcc4b9830557b8d4a7820",
                            pattern=r"^[0-9a-fA-F]{64}$")
    midi_urls: list[str] = []
    midi_sha256: list[str] = []  # one per URL, same order
    on_bad_file: Literal["skip", "fail"] = "skip"  # a MIDI file that is corrupt, truncated or fails its checksum

    @model_validator(mode="after")
    def _midi_pinned(self):
        if len(self.midi_urls) != len(self.midi_sha256):
            raise ValueError(f"midi_urls has {len(self.midi_urls)} entries but midi_sha256 has "
                             f"{len(self.midi_sha256)}: give one SHA-256 per URL, in the same order")
        bad = [h for h in self.midi_sha256 if not re.fullmatch(r"[0-9a-fA-F]{64}", h)]
        if bad:
            raise ValueError(f"midi_sha256: not a SHA-256 (64 hex digits): {bad[0]!r}")
        if self.source == "midi" and not self.midi_urls:
            raise ValueError("source 'midi' needs midi_urls (and their midi_sha256)")
        return self


class Data(Section):
    digits: DigitsData = DigitsData()
    moons: MoonsData = MoonsData()
    shapes: ShapesData = ShapesData()
    text: TextData = TextData()
    chorales: ChoralesData = ChoralesData()


# ---------------------------------------------------------------- data: preprocess ------------------
class Splits(Section):
    val_fraction: float = Fraction
    test_fraction: float = Fraction

    @model_validator(mode="after")
    def _leave_training_data(self):
        if self.val_fraction + self.test_fraction >= 0.8:
            raise ValueError("val_fraction + test_fraction must leave at least 20% for training")
        return self


class DigitsPreprocess(Splits):
    image_size: Literal[8, 16, 32, 64] = 32
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)


class DefaultSplits(Splits):
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0.0, lt=0.5)


class Preprocess(Section):
    digits: DigitsPreprocess = DigitsPreprocess()
    moons: DefaultSplits = DefaultSplits()
    shapes: DefaultSplits = DefaultSplits()
    text: DefaultSplits = DefaultSplits()
    chorales: DefaultSplits = DefaultSplits()


# ---------------------------------------------------------------- data: tokenise --------------------
class TextTokenise(Section):
    # Word-level, as the book prepares recipes and wine reviews: lower case, each punctuation mark its own
    # token. The vocabulary keeps the most frequent training-split tokens; the rest become [UNK].
    vocab_size: int = Field(10_000, ge=3)


class ChoralesTokenise(Section):
    # The MuseGAN piano-roll layout (bars x steps x pitches x tracks; one track per voice).
    bars: int = Field(2, ge=1)
    steps_per_bar: int = Field(16, ge=1)
    pitches: int = Field(84, ge=12, le=128)
    lowest_pitch: int = Field(24, ge=0, le=127)  # MIDI number of pitch index 0 (24: C1)

    @model_validator(mode="after")
    def _within_midi(self):
        if self.lowest_pitch + self.pitches > 128:
            raise ValueError(f"lowest_pitch + pitches must be <= 128 (MIDI), got {self.lowest_pitch + self.pitches}")
        return self


class Tokenise(Section):
    text: TextTokenise = TextTokenise()
    chorales: ChoralesTokenise = ChoralesTokenise()


# ---------------------------------------------------------------- models ----------------------------
class Training(Section):
    """What every trainable params section has. Families subclass it (gdl/families/<name>/__init__.py)."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0.0, le=1.0)
    # None: the top-level seed. Set it to train one model with another seed (scripts/seeds.py does).
    seed: int | None = Field(None, ge=0)


class FeatureExtractor(Training):
    feature_dim: int = Field(64, ge=8)
    # The classes it learns: the joint values of these attributes (`<split>_attributes` columns), or the
    # dataset's labels (`<split>_y`) if empty. Shape AND colour give a backbone that sees both.
    attributes: list[str] = Field(default_factory=list)
    # The features layer's activation. tanh bounds every feature, so images far from the data (the per-pixel
    # baseline's noise) land at a finite distance: with relu the shapes baseline's FID was 51,000 against a
    # model's 120, a ratio that says nothing. digits keeps relu (its committed ruler was trained so).
    feature_activation: Literal["relu", "tanh"] = "relu"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)


class FeatureExtractors(Section):
    digits: FeatureExtractor = FeatureExtractor()
    shapes: FeatureExtractor = FeatureExtractor(attributes=["shape", "colour"], epochs=10, feature_activation="tanh")


class Evaluate(Section):
    num_samples: int = Field(1_000, ge=10)  # generated samples per model (FID/KID, plots)
    backbone: Literal["domain", "inception_v3"] = "domain"
    kid_subsets: int = Field(100, ge=1)
    kid_subset_size: int = Field(1_000, ge=2)
    bootstrap: int = Field(100, ge=2)  # resamples for the bootstrap std of FID
    # inception_v3 needs ImageNet weights, fetched only against a SHA-256 pinned here (keras publishes an md5).
    inception_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")


# ---------------------------------------------------------------- World Models (chapter 12) ---------
# The chain rollouts@<shard> -> wm_vae -> wm_encode -> wm_mdnrnn -> wm_controller@<mode> -> wm_evaluate
# -> wm_report (gdl/world_models/, stages/world_models.py). Defaults: the default profile (2 cores).
class WMRollouts(Section):
    rollouts: int = Field(32, ge=1)  # episodes in all, split evenly over the shards
    # One stage per id (rollouts@<id>), each with its own seed, derived from (seed, id): adding a shard
    # leaves the others' data as it was.
    shards: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    max_steps: int = Field(250, ge=1, le=951)  # recorded steps per episode (951: CarRacing's full episode)
    policy: Literal["random", "brownian"] = "brownian"

    @model_validator(mode="after")
    def _shards_divide_rollouts(self):
        if len(set(self.shards)) != len(self.shards) or min(self.shards) < 0:
            raise ValueError(f"shards must be distinct ids >= 0, got {self.shards}")
        if self.rollouts % len(self.shards):
            raise ValueError(f"{len(self.shards)} shards do not divide {self.rollouts} rollouts evenly")
        return self


class WMVAE(Section):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(100, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    kl_tolerance: float = Field(0.5, ge=0.0)  # free bits per latent dimension, as in Ha's code
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)  # of the episodes (the last ones), for V and M


class WMMDNRNN(Section):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    seq_len: int = Field(50, ge=2)
    mixtures: int = Field(5, ge=1)


class WMControllerTraining(Section):
    population: int = Field(8, ge=2)
    trials: int = Field(1, ge=1)  # episodes per candidate per generation (the same seeds for all)
    generations: int = Field(20, ge=1)
    max_steps: int = Field(300, ge=1)  # steps per training episode
    sigma0: float = Field(0.1, gt=0.0)  # CMA-ES's initial step size


class WMDreamTraining(WMControllerTraining):
    population: int = Field(32, ge=2)
    trials: int = Field(4, ge=1)
    generations: int = Field(40, ge=1)
    temperature: float = Field(1.0, gt=0.0)  # of M's mixture when dreaming (the paper: 1.15 for Doom)


class WMController(Section):
    real: WMControllerTraining = WMControllerTraining()
    dream: WMDreamTraining = WMDreamTraining()
    workers: int = Field(0, ge=0)  # processes for real episodes; 0: one per allotted CPU


class WMEvaluate(Section):
    episodes: int = Field(8, ge=1)  # real episodes per policy, the same seeds for every policy
    max_steps: int = Field(1000, ge=50, le=1000)  # env steps per episode, the 49 of the zoom included; 1000: full
    # The controller whose figures are the headline (top level of metrics/world_models.json).
    controller: Literal["real", "dream"] = "real"


class WorldModels(Section):
    # None: the top-level seed. Every part draws from it: shard s from (seed, s), V, M and C from their own.
    seed: int | None = Field(None, ge=0)
    rollouts: WMRollouts = WMRollouts()
    vae: WMVAE = WMVAE()
    mdnrnn: WMMDNRNN = WMMDNRNN()
    controller: WMController = WMController()
    evaluate: WMEvaluate = WMEvaluate()


class Core(Section):
    """The sections every pipeline has. `schema()` adds one section per model instance."""

    seed: int = Field(42, ge=0)
    data: Data = Data()
    preprocess: Preprocess = Preprocess()
    tokenise: Tokenise = Tokenise()
    feature_extractor: FeatureExtractors = FeatureExtractors()
    evaluate: Evaluate = Evaluate()
    world_models: WorldModels = WorldModels()


# ---------------------------------------------------------------- profiles --------------------------
# Overlays of the core sections; each family brings its own (gdl/families/<name>/__init__.py).
PROFILES: dict[str, dict] = {
    "default": {},
    # Seconds per stage: for tests and for trying a change end to end. Numbers are NOT meaningful.
    "smoke": {
        "data": {"moons": {"n_samples": 2_000}, "shapes": {"n_samples": 200}, "chorales": {"max_files": 6}},
        "preprocess": {"digits": {"image_size": 16}},
        "evaluate": {"num_samples": 100, "kid_subsets": 10, "kid_subset_size": 50, "bootstrap": 10},
        "world_models": {
            "rollouts": {"rollouts": 4, "shards": [0, 1], "max_steps": 20},
            "vae": {"epochs": 1, "batch_size": 16, "val_fraction": 0.25},
            "mdnrnn": {"epochs": 1, "batch_size": 4, "seq_len": 8},
            "controller": {"real": {"population": 2, "generations": 1, "max_steps": 10},
                           "dream": {"population": 2, "trials": 2, "generations": 2, "max_steps": 10}},
            "evaluate": {"episodes": 1, "max_steps": 60},
        },
    },
    # The 2nd-edition notebooks' settings (long on a CPU; meant for a GPU node).
    "book": {
        "data": {"digits": {"source": "book"}},
        "evaluate": {"num_samples": 10_000},
        # Ha & Schmidhuber's CarRacing settings (their code: github.com/hardmaru/WorldModelsExperiments).
        # For a cluster: 100 shard jobs, and a controller job with many CPUs (workers = cpus_per_task).
        "world_models": {
            "rollouts": {"rollouts": 10_000, "shards": list(range(100)), "max_steps": 951, "policy": "random"},
            "vae": {"epochs": 10, "batch_size": 100, "learning_rate": 1e-4},
            "mdnrnn": {"epochs": 20, "batch_size": 100, "seq_len": 999},
            "controller": {"real": {"population": 64, "trials": 16, "generations": 2000, "max_steps": 1000},
                           "dream": {"population": 64, "trials": 16, "generations": 2000, "max_steps": 1000,
                                     "temperature": 1.15}},
            "evaluate": {"episodes": 100},
        },
    },
}


class ParamsError(ValueError):
    """Raised for any invalid params file; the message names the file and every offending key."""


def _merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def schema(dvc_file: str | Path | None = None) -> type[Core]:
    """The params model: the core sections + one section per model instance, typed by its family's Config."""
    from gdl import families

    try:
        models = families.instances(dvc_file or families.DVC_FILE)
    except families.InstanceError as exc:
        raise ParamsError(str(exc)) from None
    clash = set(models) & set(Core.model_fields)
    if clash:
        raise ParamsError(f"dvc.yaml: model names {sorted(clash)} clash with the params sections of those names")
    return _schema(tuple((name, inst.family.name, inst.dataset) for name, inst in models.items()))


@cache
def _schema(models: tuple[tuple[str, str, str], ...]) -> type[Core]:
    # One class per set of models, so two loads of the same params compare equal.
    from gdl import families

    fields = {}
    for name, family_name, dataset in models:
        family = families.get(family_name)
        fields[name] = (family.Config, ...)  # required: DVC tracks each model's section by name
    return create_model("Params", __base__=Core, **fields)


def model_seed(params: Core, model: str) -> int:
    """The seed a model instance trains and samples with: its own, or the top-level one."""
    own = getattr(params, model).seed
    return params.seed if own is None else own


def profile(name: str, dvc_file: str | Path | None = None) -> Core:
    """A profile's params: the core overlay, and for each model its family's values for its dataset."""
    from gdl import families

    if name not in PROFILES:
        raise ParamsError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    params = schema(dvc_file)
    raw = _merge(Core().model_dump(), PROFILES[name])
    for model, inst in families.instances(dvc_file or families.DVC_FILE).items():
        raw[model] = inst.config(name).model_dump()
    return params.model_validate(raw)


def validate(raw: object, source: str | Path = PARAMS_FILE, dvc_file: str | Path | None = None) -> Core:
    params = schema(dvc_file)
    try:
        return params.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<top level>"
            got = "" if err["type"] == "missing" else f" (got {err.get('input')!r})"
            lines.append(f"  {key}: {err['msg']}{got}")
        if any(err["type"] in ("missing", "extra_forbidden") and len(err["loc"]) == 1 for err in exc.errors()):
            lines.append("  (model sections follow dvc.yaml's `models`: `python -m gdl.params sync` adds the "
                         "missing ones with their defaults and drops the others)")
        raise ParamsError(f"{source}: invalid params:\n" + "\n".join(lines)) from None


def sync(raw: dict, dvc_file: str | Path | None = None) -> tuple[dict, list[str], list[str]]:
    """Give `raw` a section for every model of dvc.yaml (its family's defaults) and none for others, and
    give existing model sections the fields their family gained since (each at the model's default value,
    not the bare Config default: a field can differ per model, e.g. the cgan's classifier_weight).

    Returns (new raw params, models added or fields added as "model.field", sections dropped); every other
    value is left as it was.
    """
    from gdl import families

    models = families.instances(dvc_file or families.DVC_FILE)
    out = {k: v for k, v in raw.items() if k in Core.model_fields or k in models}
    added = []
    for name, inst in models.items():
        defaults = inst.config().model_dump()
        if name not in out:
            out[name], added = defaults, added + [name]
        elif isinstance(out[name], dict):
            new = [field for field in defaults if field not in out[name]]
            # Keep the section's order: the family's field order, then any unknown keys for validation to name.
            out[name] = {**{f: out[name].get(f, defaults[f]) for f in defaults}, **out[name]}
            added += [f"{name}.{field}" for field in new]
    return out, added, sorted(set(raw) - set(out))


def load_params(path: str | Path = PARAMS_FILE) -> Core:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return validate(raw, path)


def dump(params: Core) -> str:
    header = "# Every knob of the pipeline. Schema, ranges and profiles: gdl/params.py and gdl/families/*/.\n" \
             "# Switch profile: python -m gdl.params use {default,smoke,book}\n"
    body = yaml.safe_dump(params.model_dump(), sort_keys=False, default_flow_style=False)
    return header + re.sub(r": null$", ":", body, flags=re.MULTILINE)  # `seed:` reads as "unset"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gdl.params", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    use = sub.add_parser("use", help="write a profile into the params file")
    use.add_argument("profile", choices=sorted(PROFILES))
    use.add_argument("--file", type=Path, default=PARAMS_FILE)
    check = sub.add_parser("check", help="validate the params file")
    check.add_argument("--file", type=Path, default=PARAMS_FILE)
    sync_ = sub.add_parser("sync", help="add the sections of models new in dvc.yaml (their defaults), drop "
                                        "those of models no longer there; nothing else changes")
    sync_.add_argument("--file", type=Path, default=PARAMS_FILE)
    args = parser.parse_args(argv)
    try:
        if args.command == "use":
            args.file.write_text(dump(profile(args.profile)))
            print(f"{args.file}: profile {args.profile!r} written")
        elif args.command == "sync":
            raw, added, dropped = sync(yaml.safe_load(args.file.read_text()) or {})
            args.file.write_text(dump(validate(raw, args.file)))
            print(f"{args.file}: added {', '.join(added) or 'nothing'}; dropped {', '.join(dropped) or 'nothing'}")
        else:
            load_params(args.file)
            print(f"{args.file}: ok")
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
