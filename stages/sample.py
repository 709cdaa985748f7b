"""sample@<model>: draw evaluate.num_samples samples from a trained model -> samples/<model>.npz.

Besides the samples, the file holds what the report plots (reconstructions, latent codes, ...).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from gdl import families
from gdl.arrays import DataFileError, load_arrays, save_arrays
from gdl.params import Core, model_seed
from gdl.sequences import VocabularyError, check_vocab
from stages.common import fail, model_args, quiet_tensorflow


def load_model(inst: families.Instance, params: Core, data: dict, seed: int):
    """Rebuild a model from its params and load the weights train@<model> wrote: (model module, model)."""
    from gdl.training import set_seed

    set_seed(seed)
    vocab_file = Path(f"models/{inst.name}/vocab.json")
    if vocab_file.exists():
        check_vocab(json.loads(vocab_file.read_text(encoding="utf-8")), data, str(vocab_file))
    module = inst.family.model()
    model = module.build(getattr(params, inst.name), data, seed)
    with warnings.catch_warnings():  # the file also holds the optimizer's state, which inference skips
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(f"models/{inst.name}/model.weights.h5")
    return module, model


def main(argv=None) -> None:
    inst, stage, params = model_args("sample", __doc__, argv)
    quiet_tensorflow()
    seed = model_seed(params, inst.name)
    try:
        data = load_arrays(inst.data_path)
        module, model = load_model(inst, params, data, seed)
    except (DataFileError, FileNotFoundError, OSError, VocabularyError) as exc:
        fail(stage, str(exc))
    outputs = module.sample_outputs(model, data, params.evaluate.num_samples, seed)
    save_arrays(f"samples/{inst.name}.npz", outputs)
    print(f"{stage}: " + ", ".join(f"{k} {v.shape}" for k, v in outputs.items()))


if __name__ == "__main__":
    main()
