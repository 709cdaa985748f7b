"""Stage `tokenise@<dataset>`: token ids (and piano rolls) for the sequence models.

    python -m stages.tokenise text        # data/tokens/text.npz + data/tokens/text.vocab.json
    python -m stages.tokenise chorales    # data/tokens/chorales.npz + data/tokens/chorales.vocab.json

text: word-level tokens of the pydoc topics, Keras TextVectorization adapted on the training split
(params `tokenise.text`; gdl/data/text.py). chorales: the Bach chorales' voices as two aligned token streams,
pitch/rest and duration, as the book's music transformer reads them, and 2-bar piano rolls in the MuseGAN
layout (params `tokenise.chorales`; gdl/music.py). The vocabularies are written beside the arrays as JSON
so a reader (or a diff) sees them without numpy; models record the ones they were trained on and refuse
any other. Deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import importlib
import json
import time

from gdl.arrays import DataFileError, load_arrays, save_arrays
from gdl.atomic import write_text
from gdl.sequences import vocab_of
from stages.common import describe, fail, stage_args

TOKENISERS = {"text": "gdl.data.text", "chorales": "gdl.music"}


def main(argv: list[str] | None = None) -> None:
    dataset, stage, params = stage_args("tokenise", __doc__, TOKENISERS, "dataset", argv)
    start = time.perf_counter()
    path = f"data/tokens/{dataset}.npz"
    try:
        processed = load_arrays(f"data/processed/{dataset}.npz")
    except DataFileError as exc:
        fail(stage, str(exc))
    if dataset == "text":
        from stages.common import quiet_tensorflow

        quiet_tensorflow()
    arrays = importlib.import_module(TOKENISERS[dataset]).tokenise(processed, getattr(params.tokenise, dataset))
    save_arrays(path, arrays)
    write_text(f"data/tokens/{dataset}.vocab.json", json.dumps(vocab_of(arrays), indent=0, ensure_ascii=False) + "\n")
    sizes = ", ".join(f"{k} {len(v)}" for k, v in vocab_of(arrays).items())
    print(f"{describe(path, arrays)}\n{stage}: vocabularies: {sizes} [{time.perf_counter() - start:.1f} s]")


if __name__ == "__main__":
    main()
