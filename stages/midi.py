"""Stage `midi@<model>`: a music model's generated pieces as MIDI files -> samples/<model>_midi/.

    python -m stages.midi music_transformer

Reads samples/<model>.npz (stage sample@<model>) and writes one .mid file per piece with music21, through
the family's `write_midi` (gdl/families/<family>/model.py). Open them in any MIDI player or score editor.
The folder appears whole or not at all.
"""

from __future__ import annotations

from gdl.arrays import DataFileError, load_arrays
from gdl.atomic import atomic_dir
from stages.common import fail, model_args


def main(argv=None) -> None:
    inst, stage, _ = model_args("midi", __doc__, argv)
    module = inst.family.model()
    if not hasattr(module, "write_midi"):
        fail(stage, f"family {inst.family.name} writes no MIDI (gdl/families/{inst.family.name}/model.py has no write_midi)")
    try:
        outputs = load_arrays(f"samples/{inst.name}.npz")
    except DataFileError as exc:
        fail(stage, str(exc))
    with atomic_dir(f"samples/{inst.name}_midi") as folder:
        paths = module.write_midi(outputs, folder)
    print(f"{stage}: wrote {len(paths)} MIDI files to samples/{inst.name}_midi/")


if __name__ == "__main__":
    main()
