"""sample@<family>: draw evaluate.num_samples samples from a trained family -> samples/<family>.npz.

Besides the samples, the file holds what the report plots (reconstructions, latent codes, ...).
"""

from __future__ import annotations

import warnings

from gdl import families
from gdl.arrays import DataFileError, load_arrays, save_arrays
from stages.common import fail, stage_args


def load_trained(name: str, params, data):
    """Rebuild the family from params and load the weights train@<name> wrote."""
    from gdl.training import set_seed

    set_seed(params.seed)
    module = families.get(name)
    model = module.build(getattr(params, name), data, params.seed)
    with warnings.catch_warnings():  # the file also holds the optimizer's state, which inference skips
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(f"models/{name}/model.weights.h5")
    return module, model


def main(argv=None) -> None:
    family, stage, params = stage_args("sample", __doc__, families.FAMILIES, "family", argv)
    try:
        data = load_arrays(f"data/processed/{getattr(params, family).dataset}.npz")
        module, model = load_trained(family, params, data)
    except (DataFileError, FileNotFoundError, OSError) as exc:
        fail(stage, str(exc))
    outputs = module.sample_outputs(model, data, params.evaluate.num_samples, params.seed)
    save_arrays(f"samples/{family}.npz", outputs)
    print(f"{stage}: " + ", ".join(f"{k} {v.shape}" for k, v in outputs.items()))


if __name__ == "__main__":
    main()
