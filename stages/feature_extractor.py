"""feature_extractor@<dataset>: train the domain classifier whose penultimate layer is the FID/KID backbone.

On the embedded data there are no ImageNet weights to be had, so FID and KID use a classifier trained on
the dataset itself (its "features" layer). This is the pipeline's ruler, so the stage is frozen in
dvc.yaml: `dvc repro` never reruns it, and its weights, backbones/<dataset>.weights.h5, are committed to
git so that every machine measures with the same one. Retrain it only on purpose:

    make backbone DATASET=<dataset>        # this stage, then `dvc commit` of it; then git commit

Its test accuracy (metrics/feature_extractor_<dataset>.json) is a metric too: a backbone that cannot tell
the classes apart would make every FID meaningless. Weights only, as .weights.h5: a .keras archive stamps
the time into its zip, so its hash would change on every run.
"""

from __future__ import annotations

import numpy as np

from gdl.arrays import DataFileError, load_arrays
from gdl.atomic import atomic_file, write_json
from stages.common import fail, quiet_tensorflow, stage_args

BACKBONES = ("digits", "shapes")


def main(argv=None) -> None:
    dataset, stage, params = stage_args("feature_extractor", __doc__, BACKBONES, "dataset", argv)
    quiet_tensorflow()
    cfg = getattr(params.feature_extractor, dataset)
    seed = params.seed if cfg.seed is None else cfg.seed
    try:
        data = load_arrays(f"data/processed/{dataset}.npz")
    except DataFileError as exc:
        fail(stage, str(exc))

    from gdl.backbones import build_domain_classifier, domain_labels
    from gdl.training import set_seed

    set_seed(seed)
    (train_y, classes), (val_y, _), (test_y, _) = (domain_labels(data, s, cfg.attributes) for s in ("train", "val", "test"))
    model = build_domain_classifier(data["train_x"].shape[1:], classes, cfg.feature_dim, learning_rate=cfg.learning_rate,
                                    feature_activation=cfg.feature_activation)
    model.fit(data["train_x"], train_y, validation_data=(data["val_x"], val_y),
              epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True, verbose=2)
    _, accuracy = model.evaluate(data["test_x"], test_y, verbose=0)
    majority = np.bincount(train_y).argmax()

    with atomic_file(f"backbones/{dataset}.weights.h5") as tmp:
        model.save_weights(tmp)
    write_json(f"metrics/feature_extractor_{dataset}.json", {
        "accuracy": float(accuracy), "baseline": {"accuracy": float(np.mean(test_y == majority))}})
    print(f"{stage}: {classes} classes, test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
