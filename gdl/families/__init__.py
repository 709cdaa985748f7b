"""Model families as plugins: one folder per family, one small interface, found by name.

A family is a package ``gdl/families/<name>/`` holding

* ``__init__.py``: ``FAMILY = Family(...)``, what the family *is*: its params schema (a pydantic
  ``Config``) with its default values per dataset and its ``smoke``/``book`` overlays, what its samples
  are, and what it can be evaluated on. Cheap to import (no TensorFlow): every stage validates every
  params section before it starts.
* ``model.py``: the model, and the functions every stage calls::

      build(cfg, data, seed)              -> compiled keras.Model with its weights created
      train_arrays(data, cfg)             -> (x, y, validation_data) for keras `fit`
      sample(model, n, seed)              -> n samples, of the family's `samples` kind
      sample_outputs(model, data, n, seed) -> arrays for samples/<instance>.npz (`samples` + what the
                                             report draws: reconstructions, latents, ...)
      log_likelihood(model, x, cfg, seed) -> {name: per-example log-likelihood in nats}, first entry
                                             the headline figure (only where `likelihood=True`)
      extra_metrics(model, data, cfg, seed, ruler, outputs, evaluation)   (optional)
                                          -> {"figures", "baseline", "reference", "descriptions", "meta"}
                                             (each optional): figures only this family has, merged into
                                             its metrics (ruler: gdl.backbones.Ruler for image datasets;
                                             outputs: samples/<instance>.npz + the pixel baseline's samples)

* ``report.py`` (optional): a jupytext percent-format section appended to the report of its samples'
  kind (``reports/templates/<samples>.py``), for what only this family can show.

Stages are generic: what evaluation and report a family gets follows from what it declares here
(image samples -> FID/KID with baseline and reference; a likelihood -> bits/dim for images, nats for
points; ...). An *instance* is a family trained on one dataset: dvc.yaml's ``models`` var maps instance
names to ``{family, dataset}`` and params.yaml has one section per instance, so ``vae`` (digits) and
``vae_shapes`` share one folder. Adding a family = adding its folder and its entry in dvc.yaml.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Literal

import yaml

HERE = Path(__file__).resolve().parent
DVC_FILE = Path("dvc.yaml")
# What a family's `sample_outputs` puts under "samples", which decides its evaluation and report template:
# generated images, generated 2-D points, a classifier's class probabilities on the test split, generated token
# sequences (text, or a music transformer's note/duration streams) or generated multi-track piano rolls.
SAMPLE_KINDS = ("images", "points", "labels", "tokens", "pianorolls")


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    Config: type  # a gdl.params.Section subclass: the params section of each of its instances
    samples: Literal["images", "points", "labels", "tokens", "pianorolls"]
    likelihood: bool = False  # model.log_likelihood exists: bits/dim (images) or nats (points)
    # Default-profile values that differ from Config's own defaults, per dataset the family trains on and per
    # instance name (applied after the dataset's: `dcgan` and `wgan_gp` are one family with other settings).
    defaults: dict[str, dict] = field(default_factory=dict)
    # Profile overlays ("smoke", "book") applied on top of the defaults, whatever the dataset.
    profiles: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        if self.samples not in SAMPLE_KINDS:
            raise ValueError(f"family {self.name}: samples must be one of {SAMPLE_KINDS}, got {self.samples!r}")

    def model(self) -> ModuleType:
        """The family's model module (imports Keras/TensorFlow: call it only in stages that need a model)."""
        return importlib.import_module(f"gdl.families.{self.name}.model")

    @property
    def report_section(self) -> Path | None:
        path = HERE / self.name / "report.py"
        return path if path.is_file() else None

    def config(self, dataset: str, profile: str = "default", instance: str | None = None):
        """The family's params for one dataset (and instance) under a profile (validated)."""
        values = _merge(self.defaults.get(dataset, {}), self.defaults.get(instance, {}) if instance else {})
        return self.Config.model_validate(_merge(values, self.profiles.get(profile, {})))


@dataclass(frozen=True)
class Instance:
    """A family trained on one dataset, named as in dvc.yaml (stages `train@<name>`, ..., params `<name>:`)."""

    name: str
    family: Family
    dataset: str
    ruler: str | None = None  # what its samples are measured with (the image backbone's weights file)
    data: str | None = None  # the file it trains on; None: data/processed/<dataset>.npz

    @property
    def data_path(self) -> str:
        return self.data or f"data/processed/{self.dataset}.npz"

    def config(self, profile: str = "default"):
        return self.family.config(self.dataset, profile, instance=self.name)


def names() -> list[str]:
    """Every family: each sub-package of gdl/families."""
    return sorted(p.parent.name for p in HERE.glob("*/__init__.py"))


@cache
def get(name: str) -> Family:
    if name not in names():
        raise KeyError(f"unknown family {name!r}; known: {', '.join(names())}")
    family = importlib.import_module(f"gdl.families.{name}").FAMILY
    if family.name != name:
        raise ValueError(f"gdl/families/{name}: FAMILY.name is {family.name!r}, expected {name!r}")
    return family


class InstanceError(ValueError):
    """dvc.yaml's `models` var is malformed; the message names the file and the entry."""


def instances(dvc_file: str | Path = DVC_FILE) -> dict[str, Instance]:
    """Every model instance of the DAG: dvc.yaml's `models` var, {name: {family, dataset}}."""
    dvc_file = Path(dvc_file)
    try:
        doc = yaml.safe_load(dvc_file.read_text()) or {}
    except FileNotFoundError:
        raise InstanceError(f"{dvc_file}: not found (run from the repository root)") from None
    models = next((v["models"] for v in doc.get("vars", []) if isinstance(v, dict) and "models" in v), None)
    if not isinstance(models, dict):
        raise InstanceError(f"{dvc_file}: no `models` mapping under `vars`")
    out = {}
    for name, entry in models.items():
        if not isinstance(entry, dict) or not {"family", "dataset"} <= set(entry) <= {"family", "dataset", "ruler", "data"}:
            raise InstanceError(f"{dvc_file}: vars.models.{name} must be {{family, dataset[, ruler, data]}}, "
                                f"got {entry!r}")
        try:
            family = get(entry["family"])
        except KeyError as exc:
            raise InstanceError(f"{dvc_file}: vars.models.{name}: {exc.args[0]}") from None
        out[name] = Instance(name, family, entry["dataset"], entry.get("ruler"), entry.get("data"))
    return out


def instance(name: str, dvc_file: str | Path = DVC_FILE) -> Instance:
    found = instances(dvc_file)
    if name not in found:
        raise InstanceError(f"{dvc_file}: no model {name!r} in vars.models; known: {', '.join(found)}")
    return found[name]


def _merge(base: dict, overlay: dict) -> dict:
    out = dict(base)
    for key, value in overlay.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
