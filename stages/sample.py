"""sample@<model>: draw evaluate.num_samples samples from a trained model -> samples/<model>.npz.

Besides the samples, the file holds what the report plots (reconstructions, latent codes, ...).
"""

from __future__ import annotations

from gdl.arrays import DataFileError, load_arrays, save_arrays
from gdl.params import model_seed
from stages.common import fail, load_model, model_args, quiet_tensorflow


def main(argv=None) -> None:
    inst, stage, params = model_args("sample", __doc__, argv)
    quiet_tensorflow()
    seed = model_seed(params, inst.name)
    try:
        data = load_arrays(f"data/processed/{inst.dataset}.npz")
        module, model = load_model(inst, params, data, seed)
    except (DataFileError, FileNotFoundError, OSError) as exc:
        fail(stage, str(exc))
    outputs = module.sample_outputs(model, data, params.evaluate.num_samples, seed)
    save_arrays(f"samples/{inst.name}.npz", outputs)
    print(f"{stage}: " + ", ".join(f"{k} {v.shape}" for k, v in outputs.items()))


if __name__ == "__main__":
    main()
