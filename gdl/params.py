"""Every knob of the pipeline, with its type, range and default, in one schema.

`params.yaml` is what DVC tracks and what users edit; this module is what checks it. Each stage calls
`load_params()` before it does any work, so a wrong type, an unknown key or an out-of-range value stops
the run with an error naming the file and the key, before a single output is touched.

The defaults below ARE the default profile (finishes on 2 CPU cores). Other profiles are small overlays:
`smoke` (seconds per stage, for tests) and `book` (the 2nd-edition notebooks' settings). Switch with

    python -m gdl.params use smoke      # rewrites params.yaml
    python -m gdl.params check          # validates params.yaml, exit code 1 on error
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    min_chars: int = Field(200, ge=0)  # drop stub documents shorter than this


class ChoralesData(Section):
    max_files: int = Field(0, ge=0)  # 0 = every Bach chorale in music21's corpus


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


# ---------------------------------------------------------------- models ----------------------------
class Training(Section):
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0.0, le=1.0)


class FeatureExtractor(Training):
    feature_dim: int = Field(64, ge=8)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)


class FeatureExtractors(Section):
    digits: FeatureExtractor = FeatureExtractor()


class Vae(Training):
    dataset: Literal["digits"] = "digits"
    latent_dim: int = Field(2, ge=1)
    filters: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    # Weight of the reconstruction term (summed over pixels, in nats). 1.0 is the true ELBO; the book's
    # "beta 500 x mean BCE" corresponds to about 500 / (32*32) = 0.49.
    beta: float = Field(1.0, gt=0.0)
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(100, ge=1)
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)


class RealNvp(Training):
    dataset: Literal["moons"] = "moons"
    coupling_layers: int = Field(6, ge=1)
    hidden_units: int = Field(64, ge=1)
    hidden_layers: int = Field(2, ge=1)
    l2: float = Field(1e-4, ge=0.0)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)


class Evaluate(Section):
    num_samples: int = Field(1_000, ge=10)  # generated samples per family (FID/KID, plots)
    backbone: Literal["domain", "inception_v3"] = "domain"
    kid_subsets: int = Field(100, ge=1)
    kid_subset_size: int = Field(1_000, ge=2)
    iw_samples: int = Field(64, ge=1)  # importance samples for the VAE's IWAE bound
    # inception_v3 needs ImageNet weights, fetched only against a SHA-256 pinned here (keras publishes an md5).
    inception_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")


class Params(Section):
    seed: int = Field(42, ge=0)
    data: Data = Data()
    preprocess: Preprocess = Preprocess()
    feature_extractor: FeatureExtractors = FeatureExtractors()
    vae: Vae = Vae()
    realnvp: RealNvp = RealNvp()
    evaluate: Evaluate = Evaluate()


# ---------------------------------------------------------------- profiles --------------------------
PROFILES: dict[str, dict] = {
    "default": {},
    # Seconds per stage: for tests and for trying a change end to end. Numbers are NOT meaningful.
    "smoke": {
        "data": {"moons": {"n_samples": 2_000}, "shapes": {"n_samples": 200}, "chorales": {"max_files": 6}},
        "preprocess": {"digits": {"image_size": 16}},
        "feature_extractor": {"digits": {"epochs": 2}},
        "vae": {"epochs": 2, "filters": [8, 16]},
        "realnvp": {"epochs": 2, "coupling_layers": 2, "hidden_units": 16, "hidden_layers": 1},
        "evaluate": {"num_samples": 100, "kid_subsets": 10, "kid_subset_size": 50, "iw_samples": 4},
    },
    # The 2nd-edition notebooks' settings (long on a CPU; meant for a GPU node).
    "book": {
        "data": {"digits": {"source": "book"}},
        "vae": {"beta": 500 / (32 * 32), "epochs": 5, "learning_rate": 5e-4, "batch_size": 100},
        "realnvp": {"hidden_units": 256, "hidden_layers": 4, "l2": 0.01, "epochs": 300,
                    "learning_rate": 1e-4, "batch_size": 256},
        "evaluate": {"num_samples": 10_000},
    },
}


class ParamsError(ValueError):
    """Raised for any invalid params file; the message names the file and every offending key."""


def _merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def profile(name: str) -> Params:
    if name not in PROFILES:
        raise ParamsError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return Params.model_validate(_merge(Params().model_dump(), PROFILES[name]))


def validate(raw: object, source: str | Path = PARAMS_FILE) -> Params:
    try:
        return Params.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<top level>"
            got = "" if err["type"] == "missing" else f" (got {err.get('input')!r})"
            lines.append(f"  {key}: {err['msg']}{got}")
        raise ParamsError(f"{source}: invalid params:\n" + "\n".join(lines)) from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return validate(raw, path)


def dump(params: Params) -> str:
    header = "# Every knob of the pipeline. Schema, ranges and profiles: gdl/params.py.\n" \
             "# Switch profile: python -m gdl.params use {default,smoke,book}\n"
    return header + yaml.safe_dump(params.model_dump(), sort_keys=False, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gdl.params", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    use = sub.add_parser("use", help="write a profile into the params file")
    use.add_argument("profile", choices=sorted(PROFILES))
    use.add_argument("--file", type=Path, default=PARAMS_FILE)
    check = sub.add_parser("check", help="validate the params file")
    check.add_argument("--file", type=Path, default=PARAMS_FILE)
    args = parser.parse_args(argv)
    try:
        if args.command == "use":
            args.file.write_text(dump(profile(args.profile)))
            print(f"{args.file}: profile {args.profile!r} written")
        else:
            load_params(args.file)
            print(f"{args.file}: ok")
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
