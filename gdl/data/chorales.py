"""Bach chorales from music21's bundled corpus, flattened to integer note events.

Which files: ``music21.corpus.getComposer("bach")`` in sorted path order, keeping the scores only:
the 20 ``choraleAnalyses/*.rntxt`` files are Roman-numeral analyses, not music, and the three
``.krn`` (Humdrum) files duplicate ``.mxl`` files of the same chorale, so both are left out
(``params.data.chorales.max_files > 0`` then keeps the first ``max_files``). Each file is parsed with
``music21.converter.parse(path, forceSource=True)`` (no pickle cache is read or written). Files
music21 cannot parse (or that hold no notes) are skipped with a warning on stderr; more than 10%
skipped is an error.

Raw arrays:

* ``notes`` int32 (N, 5), one row per sounding note, sorted by (chorale, part, onset, duration,
  pitch), columns (``NOTE_COLUMNS``):

  0. ``chorale``: index into ``names`` (0..C-1);
  1. ``part``: index of the part in the score's order (0..parts-1); usually Soprano, Alto, Tenor,
     Bass, but some chorales add instruments (``part_names`` says which is which);
  2. ``onset``: start, in sixteenth notes from the beginning of the part's first measure
     (a pickup measure starts at 0);
  3. ``duration``: length in sixteenth notes (>= 1). Tied notes are merged into one event; onsets
     and ends are rounded to the nearest sixteenth separately (tuplets), with at least one sixteenth;
  4. ``pitch``: MIDI pitch number (60 = middle C).

  Rests are dropped, chords are split into one row per pitch, grace notes (no duration) are skipped.
* ``names`` unicode (C,): the corpus-relative file, e.g. ``bach/bwv1.6.mxl``;
* ``parts`` int64 (C,): number of parts of each chorale;
* ``part_names`` unicode (C, P): the parts' names (``Soprano``, ``Alto``, ``Horn 2``, ...), padded
  with ``""`` to the largest number of parts P;
* ``key_sharps`` int64 (C,): the first key signature (sharps > 0, flats < 0; 0 if none);
* ``time_numerator`` / ``time_denominator`` int64 (C,): the first time signature (0/0 if none).

Processed arrays, for each split of ``train``/``val``/``test``: a split by chorale, where the
versions of one chorale in the corpus (``bwv18.5-lz`` / ``bwv18.5-w``, ``bwv190.7`` /
``bwv190.7-inst``, ...) always land in the same split (see :func:`chorale_group`):
``<split>_notes`` with column 0 renumbered 0..k-1 in the order of ``<split>_names``, and
``<split>_names``, ``<split>_parts``, ``<split>_part_names``, ``<split>_key_sharps``,
``<split>_time_numerator``, ``<split>_time_denominator``; plus the unprefixed ``note_columns``.

Parsing all 410 chorales takes about 75 s on one core (measured: music21's MusicXML reader is most
of it), so with 40 files or more they are parsed by a process pool, one worker per available CPU;
results are collected in file order, so the output does not depend on the number of workers.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from gdl.data.splits import split_indices

NOTE_COLUMNS = ("chorale", "part", "onset", "duration", "pitch")
PER_CHORALE = ("names", "parts", "part_names", "key_sharps", "time_numerator", "time_denominator")
MAX_FAILURE_RATE = 0.10
PARALLEL_MIN_FILES = 40  # below this, worker start-up costs more than it saves
_SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".mid", ".midi", ".abc")


def corpus_files() -> list[tuple[str, Path]]:
    """(corpus-relative name, path) of each Bach chorale score, in sorted path order."""
    from music21 import corpus

    paths = sorted(Path(p) for p in corpus.getComposer("bach"))
    scores = [p for p in paths if p.suffix.lower() in _SCORE_SUFFIXES]
    preferred = {p.stem for p in scores if p.suffix.lower() in (".mxl", ".xml", ".musicxml")}
    scores = [p for p in scores if p.suffix.lower() not in (".krn",) or p.stem not in preferred]
    return [(_relative_name(p), p) for p in scores]


def _relative_name(path: Path) -> str:
    parts = path.parts
    # ".../music21/corpus/bach/bwv1.6.mxl" -> "bach/bwv1.6.mxl"
    for i in range(len(parts) - 1, 0, -1):
        if parts[i - 1] == "corpus" and parts[i] == "bach":
            return "/".join(parts[i:])
    return path.name


def _sixteenths(quarter_length) -> int:
    return int(np.floor(Fraction(quarter_length) * 4 + Fraction(1, 2)))


def _note_rows(part, part_index: int) -> list[list[int]]:
    """[chorale=0, part, onset, end, pitch] per sounding note of ``part``, ties merged (16ths)."""
    rows: list[list[int]] = []
    open_ties: dict[int, list[int]] = {}  # midi pitch -> the row a tie is still extending
    for element in part.flatten().notes:
        if element.duration.isGrace or element.quarterLength == 0:
            continue
        offset = Fraction(element.offset)
        onset = _sixteenths(offset)
        end = max(onset + 1, _sixteenths(offset + Fraction(element.quarterLength)))
        members = list(element.notes) if element.isChord else [element]
        for note in members:
            pitch = getattr(note, "pitch", None)
            if pitch is None:  # unpitched percussion
                continue
            midi = int(pitch.midi)
            tie = note.tie if note.tie is not None else (element.tie if element.isChord else None)
            kind = tie.type if tie is not None else None
            row = open_ties.get(midi)
            if kind in ("continue", "stop") and row is not None:
                row[3] = max(row[3], end)
                if kind == "stop":
                    del open_ties[midi]
                continue
            row = [0, part_index, onset, end, midi]
            rows.append(row)
            if kind in ("start", "continue"):
                open_ties[midi] = row
            else:
                open_ties.pop(midi, None)
    return rows


def parse_chorale(path: str | Path) -> dict:
    """Note events and metadata of one score (chorale index 0); raises on parse errors."""
    from music21 import converter, key, meter

    score = converter.parse(str(path), forceSource=True)
    parts = list(score.parts) if len(getattr(score, "parts", ())) else [score]
    if any(getattr(p.getInstrument(returnDefault=False), "transposition", None) for p in parts):
        score = score.toSoundingPitch()  # written pitch of transposing instruments -> concert pitch
        parts = list(score.parts) if len(getattr(score, "parts", ())) else [score]
    rows: list[list[int]] = []
    for part_index, part in enumerate(parts):
        rows.extend(_note_rows(part, part_index))
    notes = np.array(rows, dtype=np.int64).reshape(-1, len(NOTE_COLUMNS))
    notes[:, 3] -= notes[:, 2]  # end -> duration
    flat_score = score.flatten()
    ks = flat_score.getElementsByClass(key.KeySignature).first()
    ts = flat_score.getElementsByClass(meter.TimeSignature).first()
    return {
        "notes": notes.astype(np.int32),
        "parts": len(parts),
        "part_names": [str(p.partName or p.id or "") for p in parts],
        "key_sharps": int(ks.sharps) if ks is not None else 0,
        "time_numerator": int(ts.numerator) if ts is not None else 0,
        "time_denominator": int(ts.denominator) if ts is not None else 0,
    }


def _parse_or_error(path: str) -> dict | str:
    try:
        return parse_chorale(path)
    except Exception as exc:  # music21 raises many kinds of errors on bad input
        return f"{type(exc).__name__}: {exc}"


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # respects taskset / Slurm CPU binding
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _sort_rows(notes: np.ndarray) -> np.ndarray:
    if len(notes) == 0:
        return notes
    order = np.lexsort(tuple(notes[:, c] for c in reversed(range(notes.shape[1]))))
    return notes[order]


def acquire(cfg, seed: int) -> dict[str, np.ndarray]:
    del seed  # the corpus is fixed
    from tqdm import tqdm

    files = corpus_files()
    if cfg.max_files > 0:
        files = files[: cfg.max_files]
    if not files:
        raise RuntimeError("music21's corpus has no Bach chorales (is music21 installed completely?)")

    paths = [str(path) for _, path in files]
    workers = _workers() if len(paths) >= PARALLEL_MIN_FILES else 1
    bar = tqdm(total=len(paths), desc="chorales", unit="file", file=sys.stderr)
    with bar:
        if workers > 1:
            # map() yields in input order, so the output does not depend on scheduling.
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = []
                for result in pool.map(_parse_or_error, paths, chunksize=4):
                    results.append(result)
                    bar.update()
        else:
            results = []
            for path in paths:
                results.append(_parse_or_error(path))
                bar.update()

    kept: list[tuple[str, dict]] = []
    failures = 0
    for (name, _), result in zip(files, results):
        if isinstance(result, str):
            failures += 1
            print(f"warning: skipping {name}: music21 could not parse it ({result})", file=sys.stderr)
        elif len(result["notes"]) == 0:
            failures += 1
            print(f"warning: skipping {name}: no notes", file=sys.stderr)
        else:
            kept.append((name, result))
    if failures > MAX_FAILURE_RATE * len(files):
        raise RuntimeError(f"{failures} of {len(files)} chorales could not be read "
                           f"(more than {MAX_FAILURE_RATE:.0%}); see the warnings above")
    if failures:
        print(f"warning: {failures} of {len(files)} chorales skipped", file=sys.stderr)

    max_parts = max(r["parts"] for _, r in kept)
    notes = []
    for index, (_, result) in enumerate(kept):
        block = result["notes"].copy()
        block[:, 0] = index
        notes.append(_sort_rows(block))
    return {
        "notes": np.concatenate(notes).astype(np.int32),
        "names": np.array([name for name, _ in kept], dtype=str),
        "parts": np.array([r["parts"] for _, r in kept], dtype=np.int64),
        "part_names": np.array([r["part_names"] + [""] * (max_parts - r["parts"]) for _, r in kept], dtype=str),
        "key_sharps": np.array([r["key_sharps"] for _, r in kept], dtype=np.int64),
        "time_numerator": np.array([r["time_numerator"] for _, r in kept], dtype=np.int64),
        "time_denominator": np.array([r["time_denominator"] for _, r in kept], dtype=np.int64),
    }


def chorale_group(name: str) -> str:
    """The chorale a file is a version of: ``bach/bwv18.5-lz.mxl`` and ``bach/bwv18.5-w.mxl`` -> ``bwv18.5``."""
    return Path(str(name)).stem.split("-")[0]


def preprocess(raw: dict[str, np.ndarray], cfg, seed: int) -> dict[str, np.ndarray]:
    notes = raw["notes"]
    n = len(raw["names"])
    # Split by chorale, keeping the versions of one chorale (e.g. bwv190.7 and bwv190.7-inst)
    # together so that no split sees a near-copy of another split's music.
    groups = np.array([chorale_group(name) for name in raw["names"]], dtype=str)
    unique, group_of = np.unique(groups, return_inverse=True)
    group_of = group_of.reshape(-1)
    out: dict[str, np.ndarray] = {"note_columns": np.array(NOTE_COLUMNS, dtype=str)}
    for split, group_idx in zip(("train", "val", "test"),
                                split_indices(len(unique), cfg.val_fraction, cfg.test_fraction, seed)):
        idx = np.flatnonzero(np.isin(group_of, group_idx))
        renumber = np.full(n, -1, dtype=np.int64)
        renumber[idx] = np.arange(len(idx))
        rows = notes[np.isin(notes[:, 0], idx)].copy()
        rows[:, 0] = renumber[rows[:, 0]]
        out[f"{split}_notes"] = _sort_rows(rows).astype(np.int32)
        for key in PER_CHORALE:
            out[f"{split}_{key}"] = raw[key][idx]
    return out
