"""Bach chorales (or other MIDI music), flattened to integer note events.

Sources (``params.data.chorales.source``), all giving the raw arrays below:

* ``embedded`` (default): music21's bundled corpus, offline (details next).
* ``jsb``: the book's MuseGAN data, ``Jsb16thSeparated.npz`` (github czhuang/JSB-Chorales-dataset; URL
  ``jsb_url``, pinned ``jsb_sha256``): a dict of ``train``/``valid``/``test`` object arrays, each chorale a
  (T, 4) float array of MIDI pitches per sixteenth note, NaN for a rest. The columns are soprano, alto,
  tenor, bass (the dataset's README says so, and the rows of its JSON twin agree, e.g. [74, 70, 65, 58]; a
  file whose columns' mean pitches do not fall from 0 to 3 gets a warning). The pickles inside need ``allow_pickle``, so the archive is opened
  only after :func:`gdl.download.fetch` has matched its SHA-256 (a mismatch leaves no file behind). The
  file does not tell held notes from repeated ones: each run of one pitch in a voice becomes one note.
  Pieces are named ``jsb/<split>/<index>``, with 4 parts (Soprano, Alto, Tenor, Bass), key_sharps 0 and
  time 4/4 (the file has neither); the file's own split is not kept (:func:`preprocess` splits every
  source the same way).
* ``midi``: MIDI files (``midi_urls``, each pinned by the ``midi_sha256`` at the same position; e.g. the
  book's Bach cello suites), parsed by music21 like the corpus files, named ``midi/<file name>``. A file
  that fails its checksum, is cut short (checked by :func:`midi_problem`: music21 alone would read the
  first half of a truncated file without a word), or that music21 cannot read is a *bad file*: with
  ``on_bad_file: skip`` it gets a warning naming it and the stage output counts the skipped files; with
  ``fail`` the stage stops with an error naming it.

Which files (embedded): ``music21.corpus.getComposer("bach")`` in sorted path order, keeping the scores only:
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
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from gdl.data.splits import split_indices

NOTE_COLUMNS = ("chorale", "part", "onset", "duration", "pitch")
PER_CHORALE = ("names", "parts", "part_names", "key_sharps", "time_numerator", "time_denominator")
MAX_FAILURE_RATE = 0.10
PARALLEL_MIN_FILES = 40  # below this, worker start-up costs more than it saves
JSB_SPLITS = ("train", "valid", "test")
JSB_PARTS = ("Soprano", "Alto", "Tenor", "Bass")
JSB_DEST = Path("data/downloads/Jsb16thSeparated.npz")
MIDI_DEST = Path("data/downloads/midi")
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
        # music21 gives MIDI tracks without a name an id() number as id: name them by position instead.
        "part_names": [str(p.partName or (p.id if isinstance(p.id, str) else "") or f"Part {i + 1}")
                       for i, p in enumerate(parts)],
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


def _parse_all(paths: list[str], desc: str, reader=None) -> list[dict | str]:
    """parse_chorale of each path, or its error message; in input order, in parallel when it pays."""
    from tqdm import tqdm

    reader = reader or _parse_or_error
    workers = _workers() if len(paths) >= PARALLEL_MIN_FILES else 1
    results: list[dict | str] = []
    with tqdm(total=len(paths), desc=desc, unit="file", file=sys.stderr) as bar:
        if workers > 1:
            # map() yields in input order, so the output does not depend on scheduling.
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for result in pool.map(reader, paths, chunksize=4):
                    results.append(result)
                    bar.update()
        else:
            for path in paths:
                results.append(reader(path))
                bar.update()
    return results


def _raw_arrays(kept: list[tuple[str, dict]]) -> dict[str, np.ndarray]:
    """The raw arrays (module docstring) of parsed pieces [(name, parse_chorale result)]."""
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


def acquire(cfg, seed: int) -> dict[str, np.ndarray]:
    """Raw note rows of ``cfg.source`` (``embedded`` when cfg has no ``source``); ``seed`` is unused."""
    del seed  # every source is fixed data
    source = getattr(cfg, "source", "embedded")
    if source == "jsb":
        return _acquire_jsb(cfg)
    if source == "midi":
        return _acquire_midi(cfg)
    if source != "embedded":  # pragma: no cover - params validation rules this out
        raise ValueError(f"unknown chorales source {source!r}")

    files = corpus_files()
    if cfg.max_files > 0:
        files = files[: cfg.max_files]
    if not files:
        raise RuntimeError("music21's corpus has no Bach chorales (is music21 installed completely?)")
    results = _parse_all([str(path) for _, path in files], "chorales")

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
    return _raw_arrays(kept)


# ---------------------------------------------------------------- source: jsb ---------------------------


def jsb_notes(piece: np.ndarray) -> np.ndarray:
    """Note rows (chorale 0, part, onset, duration, pitch) of one (T, 4) JSB chorale (NaN = rest).

    The file stores a pitch per voice per sixteenth and does not tell a held note from a repeated one, so
    each run of one pitch in a voice becomes one note (as MuseGAN's piano rolls see it anyway).
    """
    steps = np.nan_to_num(np.asarray(piece, dtype=np.float64), nan=-1.0)
    rows = []
    for part in range(steps.shape[1]):
        voice = np.rint(steps[:, part]).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, voice[1:] != voice[:-1]])
        ends = np.r_[starts[1:], len(voice)]
        sounding = voice[starts] >= 0
        block = np.zeros((int(sounding.sum()), 5), np.int64)
        block[:, 1] = part
        block[:, 2] = starts[sounding]
        block[:, 3] = (ends - starts)[sounding]
        block[:, 4] = voice[starts][sounding]
        rows.append(block)
    return np.concatenate(rows) if rows else np.zeros((0, 5), np.int64)


def read_jsb(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{"train"|"valid"|"test": [(T, 4) float arrays]} of a Jsb16thSeparated.npz whose SHA-256 was checked.

    The archive holds pickled object arrays (saved by Python 2, hence latin1), so it needs allow_pickle:
    call this only on a file fetch() has verified. Anything unreadable is a DataFileError naming the file.
    """
    from gdl.arrays import DataFileError

    try:
        with np.load(path, allow_pickle=True, encoding="latin1") as f:
            pieces = {split: [np.asarray(p, dtype=np.float64) for p in f[split]] for split in JSB_SPLITS}
    except Exception as exc:  # noqa: BLE001 - zip, pickle, key errors: all mean not the file we expect
        raise DataFileError(f"{path}: not a readable JSB chorales archive ({type(exc).__name__}: {exc})") from None
    for split, items in pieces.items():
        for i, p in enumerate(items):
            if p.ndim != 2 or p.shape[1] != len(JSB_PARTS):
                raise DataFileError(f"{path}: {split}[{i}] has shape {p.shape}, expected (steps, 4)")
    return pieces


def _acquire_jsb(cfg) -> dict[str, np.ndarray]:
    from gdl.download import fetch

    # fetch returns only once the file has the pinned SHA-256 (a mismatch leaves nothing behind), and only
    # then is the pickle-bearing archive opened.
    path = fetch(cfg.jsb_url, JSB_DEST, cfg.jsb_sha256)
    pieces = read_jsb(path)
    # Columns are soprano, alto, tenor, bass (the dataset's README; its first chorales start e.g. [74, 70, 65, 58]).
    # Say so loudly if a mirror's file disagrees: the mean pitch should fall from column 0 to column 3.
    sounding = [p for items in pieces.values() for p in items if len(p)]
    means = np.nanmean(np.concatenate(sounding), axis=0) if sounding else np.zeros(len(JSB_PARTS))
    if not np.all(np.diff(means) < 0):
        print(f"warning: {path}: the voices' mean pitches {np.round(means, 1).tolist()} do not fall from "
              "soprano to bass; the columns may not be in SATB order", file=sys.stderr)
    kept = []
    for split in JSB_SPLITS:
        for i, piece in enumerate(pieces[split]):
            notes = jsb_notes(piece)
            if len(notes) == 0:
                print(f"warning: skipping jsb/{split}/{i:04d}: no notes", file=sys.stderr)
                continue
            kept.append((f"jsb/{split}/{i:04d}", {"notes": notes.astype(np.int32), "parts": len(JSB_PARTS),
                                                  "part_names": list(JSB_PARTS), "key_sharps": 0,
                                                  "time_numerator": 4, "time_denominator": 4}))
    if cfg.max_files > 0:
        kept = kept[: cfg.max_files]
    if not kept:
        raise RuntimeError(f"{path}: no chorale with notes")
    return _raw_arrays(kept)


# ---------------------------------------------------------------- source: midi --------------------------


def _midi_dest(url: str, sha256: str) -> Path:
    name = Path(urllib.parse.urlparse(url).path).name or "file"
    if Path(name).suffix.lower() not in (".mid", ".midi"):
        name += ".mid"  # music21 picks its reader by suffix
    return MIDI_DEST / f"{sha256[:12].lower()}-{name}"


def midi_problem(path: str | Path) -> str | None:
    """What is structurally wrong with a standard MIDI file, or None.

    music21 reads a file cut short without complaint (it keeps the notes before the cut), so the chunk
    structure is checked first: the header, then every chunk's declared length against the bytes there,
    as many tracks as the header promises, each closed by an End of Track event.
    """
    data = Path(path).read_bytes()
    if len(data) < 14 or data[:4] != b"MThd":
        return "not a MIDI file (no MThd header)"
    header = int.from_bytes(data[4:8], "big")
    tracks = int.from_bytes(data[10:12], "big")
    pos, found = 8 + header, 0
    while pos < len(data):
        if pos + 8 > len(data):
            return f"truncated: {len(data) - pos} stray byte(s) after the last chunk"
        kind, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        if pos + 8 + size > len(data):
            return f"truncated: chunk {found + 1} declares {size} bytes, {len(data) - pos - 8} present"
        if kind == b"MTrk":
            found += 1
            if data[pos + 8 + size - 3:pos + 8 + size] != b"\xff\x2f\x00":
                return f"track {found} has no End of Track event"
        pos += 8 + size
    if found < tracks:
        return f"truncated: the header promises {tracks} track(s), the file holds {found}"
    return None


def _read_midi(path: str) -> dict | str:
    problem = midi_problem(path)
    if problem is not None:
        return problem
    result = _parse_or_error(path)
    return f"music21 could not read it ({result})" if isinstance(result, str) else result


def _acquire_midi(cfg) -> dict[str, np.ndarray]:
    """Each URL fetched against its SHA-256 and parsed by music21; bad files skipped or fatal (on_bad_file)."""
    from gdl.arrays import DataFileError
    from gdl.download import ChecksumError, fetch

    pairs = list(zip(cfg.midi_urls, cfg.midi_sha256))
    if cfg.max_files > 0:
        pairs = pairs[: cfg.max_files]
    if not pairs:
        raise ValueError("source 'midi' needs midi_urls and midi_sha256")

    def bad(name: str, why: str) -> None:
        if cfg.on_bad_file == "fail":
            raise DataFileError(f"bad MIDI file {name}: {why} (on_bad_file: fail; set skip to leave it out)")
        print(f"warning: skipping bad MIDI file {name}: {why}", file=sys.stderr)

    names, paths, skipped = [], [], []
    for url, sha in pairs:
        name = f"midi/{Path(urllib.parse.urlparse(url).path).name or url}"
        try:
            # A transfer cut short fails the checksum; the file is then never kept, let alone opened.
            paths.append(str(fetch(url, _midi_dest(url, sha), sha)))
            names.append(name)
        except ChecksumError as exc:
            bad(name, str(exc))
            skipped.append(name)
    results = _parse_all(paths, "midi", reader=_read_midi)
    kept = []
    for name, result in zip(names, results):
        if isinstance(result, str) or len(result["notes"]) == 0:
            bad(name, result if isinstance(result, str) else "no notes")
            skipped.append(name)
        else:
            kept.append((name, result))
    # The count goes to stdout, into the stage's own output, not only to the warnings on stderr.
    print(f"chorales: {len(kept)} of {len(pairs)} MIDI files read, {len(skipped)} bad file(s) skipped"
          + (f": {', '.join(skipped)}" if skipped else ""))
    if not kept:
        raise DataFileError(f"none of the {len(pairs)} MIDI files could be read; see the warnings above")
    return _raw_arrays(kept)


def chorale_group(name: str) -> str:
    """The chorale a file is a version of: ``bach/bwv18.5-lz.mxl`` and ``bach/bwv18.5-w.mxl`` -> ``bwv18.5``.

    Only the corpus's own names have versions; any other piece (``jsb/train/0007``, ``midi/cs1-1pre.mid``)
    is a group of its own.
    """
    name = str(name)
    if not name.startswith("bach/"):
        return name
    return Path(name).stem.split("-")[0]


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
