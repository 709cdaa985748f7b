"""V's and M's files: a folder holding config.json (the constructor's arguments) and model.weights.h5.

Why not Keras's `.keras` archive (which `save_vae` / `save_model` still write for a path ending in
`.keras`): it is a zip whose entries carry the time they were written, so the same weights give other
bytes on every run, and DVC would see a new output each time. The folder's two files are byte-identical
for identical weights (the pipeline's other models are saved as `.weights.h5` for the same reason). The
optimizer state is not kept: a stage that stops mid-training resumes from its checkpoint (gdl/training.py),
not from this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from gdl.atomic import atomic_dir

CONFIG, WEIGHTS = "config.json", "model.weights.h5"


def save(model: keras.Model, path) -> None:
    """`path` ending in .keras: Keras's archive (with the optimizer); otherwise the folder (atomically)."""
    path = Path(path)
    if path.suffix == ".keras":
        model.save(path)
        return
    config = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable", "dtype")}
    with atomic_dir(path) as out:
        (out / CONFIG).write_text(json.dumps({"class": type(model).__name__, "config": config}, indent=1) + "\n")
        model.save_weights(out / WEIGHTS)


def load(cls: type[keras.Model], path, compile: bool = True, build=None) -> keras.Model:
    """The `cls` model that `save` wrote to `path` (a .keras archive or a folder; `compile` only applies to
    the archive: a folder's model comes uncompiled); an error names the file if it holds another kind. `build(model)` creates the weights of a fresh model (a call on a
    dummy input) before the folder's weights are loaded into it."""
    path = Path(path)
    if path.suffix == ".keras":
        model = keras.saving.load_model(path, compile=compile)
        kind = type(model).__name__
    else:
        try:
            saved = json.loads((path / CONFIG).read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a saved model folder ({CONFIG} unreadable: {exc})") from None
        kind = saved.get("class")
        model = None
        if kind == cls.__name__:
            model = cls(**saved["config"])
            build(model)
            model.load_weights(path / WEIGHTS)
    if kind != cls.__name__:
        raise ValueError(f"{path}: holds a {kind}, not a {cls.__name__}")
    return model
