"""sample@<family>: draw evaluate.num_samples samples from a trained family -> samples/<family>.npz.

Besides the samples, the file holds what the report plots (reconstructions, latent codes, ...).
"""

from __future__ import annotations

import argparse
import warnings

from gdl import families
from gdl.arrays import DataFileError, load_arrays, save_arrays
from stages.common import fail, params_or_exit


def load_trained(name: str, params, data):
    """Rebuild the family from params and load the weights train@<name> wrote."""
    from gdl.training import set_seed

    set_seed(params.seed)
    family = families.get(name)
    model = family.build(getattr(params, name), data, params.seed)
    with warnings.catch_warnings():  # the file also holds the optimizer's state, which inference skips
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(f"models/{name}/model.weights.h5")
    return family, model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.sample", description=__doc__)
    parser.add_argument("family", choices=families.FAMILIES)
    args = parser.parse_args(argv)
    stage = f"sample@{args.family}"
    params = params_or_exit(stage)
    try:
        data = load_arrays(f"data/processed/{getattr(params, args.family).dataset}.npz")
        family, model = load_trained(args.family, params, data)
    except (DataFileError, FileNotFoundError, OSError) as exc:
        fail(stage, str(exc))
    outputs = family.sample_outputs(model, data, params.evaluate.num_samples, params.seed)
    save_arrays(f"samples/{args.family}.npz", outputs)
    print(f"{stage}: " + ", ".join(f"{k} {v.shape}" for k, v in outputs.items()))


if __name__ == "__main__":
    main()
