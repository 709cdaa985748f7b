"""Music helpers: the chorales as token streams and piano rolls, and the way back to MIDI.

The book reads music two ways, and :func:`tokenise` writes both from ``data/processed/chorales.npz``
(``<split>_notes`` rows (chorale, part, onset, duration, pitch), in sixteenth notes and MIDI pitch):

* **Two token streams** (chapter 11's music transformer): each voice is a sequence of events, one
  (note, duration) pair per event. Note tokens are ``"rest"`` or the pitch as music21 spells it
  (``Pitch(61).nameWithOctave == "C#4"``, so a name parses back to the same MIDI number); duration tokens
  are the quarter length as ``str(float)`` (``"0.25"`` is a sixteenth). Every sequence starts with the
  event ("START", "0.0").
* **Piano rolls** (MuseGAN): uint8 tensors (phrases, bars, steps, pitches, tracks) in {0, 1}, one track
  per voice, at most one pitch per track and step.

A voice is monophonic in both views: where a part sounds several pitches at once, the highest wins.
For the token streams that means: of notes starting together the highest is kept, and a kept note that is
still sounding when the next one starts is cut there (so events never overlap); a gap before a note
(including one before the voice's first note) becomes a rest. Parts without notes give no sequence.

Everything here is plain numpy apart from the pitch names and MIDI files (music21), and deterministic:
vocabularies are ordered by training count, ties by the token's string.
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
VOICES = 4
TRACK_NAMES = ("soprano", "alto", "tenor", "bass")
PAD, UNK, START = "", "[UNK]", "START"
START_DURATION = "0.0"
REST = "rest"
_SKIP = {PAD, UNK, START}


@cache
def pitch_names() -> tuple[str, ...]:
    """music21's name with octave of every MIDI pitch 0..127 (61 -> "C#4")."""
    from music21 import pitch

    return tuple(pitch.Pitch(midi=m).nameWithOctave for m in range(128))


def _duration_token(sixteenths: int) -> str:
    return str(sixteenths / 4)  # k/4 is exact in binary, so str() is "0.25", "1.0", "1.5", ...


# ---------------------------------------------------------------------------------------------
# Token streams


def _voice_events(notes: np.ndarray, parts: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
    """The events of every voice of one split: (note tokens, duration tokens, offsets)."""
    part_count = parts[notes[:, 0]] if len(notes) else np.zeros(0, np.int64)
    rows = notes[(notes[:, 1] < VOICES) & (notes[:, 1] < part_count)].astype(np.int64)
    chorale, part, onset, duration, midi = rows.T if len(rows) else np.zeros((5, 0), np.int64)
    # Sort by voice, onset, highest pitch first; then keep the first row of each (voice, onset).
    order = np.lexsort((-midi, onset, part, chorale))
    chorale, part, onset, duration, midi = (a[order] for a in (chorale, part, onset, duration, midi))
    voice = chorale * VOICES + part
    first = np.ones(len(voice), bool)
    first[1:] = (voice[1:] != voice[:-1]) | (onset[1:] != onset[:-1])
    voice, onset, duration, midi = voice[first], onset[first], duration[first], midi[first]

    # A note still sounding when the next one of its voice starts is cut there.
    end = onset + duration
    same_next = np.zeros(len(voice), bool)
    same_next[:-1] = voice[1:] == voice[:-1]
    end[:-1] = np.where(same_next[:-1], np.minimum(end[:-1], onset[1:]), end[:-1])
    # The gap before each note (from 0 for a voice's first note) becomes a rest.
    new_voice = np.ones(len(voice), bool)
    new_voice[1:] = ~same_next[:-1]
    prev_end = np.zeros(len(voice), np.int64)
    prev_end[1:] = end[:-1]
    prev_end[new_voice] = 0
    gap = onset - prev_end

    # Events in order: per voice START, then for each note [rest if gap] note.
    starts = np.flatnonzero(new_voice)
    names = pitch_names()
    note_tokens: list[str] = []
    duration_tokens: list[str] = []
    offsets = [0]
    for s, e in pairwise([*starts.tolist(), len(voice)]):
        note_tokens.append(START)
        duration_tokens.append(START_DURATION)
        for i in range(s, e):
            if gap[i] > 0:
                note_tokens.append(REST)
                duration_tokens.append(_duration_token(int(gap[i])))
            note_tokens.append(names[midi[i]])
            duration_tokens.append(_duration_token(int(end[i] - onset[i])))
        offsets.append(len(note_tokens))
    return note_tokens, duration_tokens, np.array(offsets, dtype=np.int64)


def _vocabulary(tokens: list[str], start_token: str) -> np.ndarray:
    """pad, unk, the START event's token, then the rest by descending count, ties by string."""
    values, counts = np.unique(np.array([t for t in tokens if t != start_token], dtype=str), return_counts=True)
    order = np.lexsort((values, -counts))  # np.unique sorted values, so ties keep string order
    return np.array([PAD, UNK, start_token] + [str(v) for v in values[order]], dtype=str)


def _encode(tokens: list[str], vocab: np.ndarray) -> np.ndarray:
    index = {t: i for i, t in enumerate(vocab.tolist())}
    return np.array([index.get(t, 1) for t in tokens], dtype=np.int32)


# ---------------------------------------------------------------------------------------------
# Piano rolls


def _pianorolls(notes: np.ndarray, parts: np.ndarray, cfg) -> tuple[np.ndarray, int]:
    """(phrases, bars, steps, pitches, 4) uint8 of the chorales with >= 4 parts; and the dropped notes."""
    bars, steps, pitches, lowest = int(cfg.bars), int(cfg.steps_per_bar), int(cfg.pitches), int(cfg.lowest_pitch)
    length = bars * steps
    empty = np.zeros((0, bars, steps, pitches, VOICES), np.uint8)
    rows = notes[(notes[:, 1] < VOICES)].astype(np.int64) if len(notes) else np.zeros((0, 5), np.int64)
    rows = rows[parts[rows[:, 0]] >= VOICES]
    if len(rows) == 0:
        return empty, 0
    index = rows[:, 4] - lowest
    inside = (index >= 0) & (index < pitches)
    dropped = int((~inside).sum())
    rows, index = rows[inside], index[inside]
    if len(rows) == 0:
        return empty, dropped

    # Each chorale's timeline (its last note's end) laid end to end: base[c] is where chorale c starts.
    chorales = np.unique(notes[:, 0][parts[notes[:, 0]] >= VOICES])
    ends = np.zeros(len(parts), np.int64)
    np.maximum.at(ends, rows[:, 0], rows[:, 2] + rows[:, 3])
    base = np.zeros(len(parts), np.int64)
    base[1:] = np.cumsum(ends)[:-1]
    # Every sounding (step, track) of every note, then the highest pitch index per (step, track).
    durations = rows[:, 3]
    within = np.arange(durations.sum()) - np.repeat(np.cumsum(durations) - durations, durations)
    step = np.repeat(base[rows[:, 0]] + rows[:, 2], durations) + within
    cell = step * VOICES + np.repeat(rows[:, 1], durations)
    highest = np.full(int(ends.sum()) * VOICES, -1, np.int64)
    np.maximum.at(highest, cell, np.repeat(index, durations))

    # Non-overlapping phrases of `length` steps from step 0 of each chorale; a last short one is dropped.
    starts = np.concatenate([base[c] + length * np.arange(ends[c] // length) for c in chorales])
    if len(starts) == 0:
        return empty, dropped
    gather = (starts[:, None] + np.arange(length)[None, :])  # (P, length) global steps
    top = highest.reshape(-1, VOICES)[gather]  # (P, length, tracks) pitch index or -1
    top = top[(top >= 0).any(axis=(1, 2))]  # phrases where every track is silent are dropped
    roll = np.zeros((len(top), length, pitches, VOICES), np.uint8)
    p, t, k = np.nonzero(top >= 0)
    roll[p, t, top[p, t, k], k] = 1
    return roll.reshape(len(top), bars, steps, pitches, VOICES), dropped


# ---------------------------------------------------------------------------------------------


def tokenise(processed: dict, cfg) -> dict[str, np.ndarray]:
    """data/processed/chorales.npz -> data/tokens/chorales.npz (see the module docstring and the arrays below).

    note_vocab / duration_vocab (str), {split}_note_ids / {split}_duration_ids int32 (N,), {split}_offsets
    int64 (S+1,) (one sequence per voice, in (chorale, part) order), {split}_pianorolls uint8
    (P, bars, steps, pitches, 4), pianoroll_lowest_pitch int64 scalar, pianoroll_tracks (4,) str.
    """
    events = {s: _voice_events(np.asarray(processed[f"{s}_notes"]), np.asarray(processed[f"{s}_parts"]))
              for s in SPLITS}
    note_vocab = _vocabulary(events["train"][0], START)
    duration_vocab = _vocabulary(events["train"][1], START_DURATION)
    out: dict[str, np.ndarray] = {"note_vocab": note_vocab, "duration_vocab": duration_vocab}
    dropped = 0
    for s in SPLITS:
        notes_tokens, duration_tokens, offsets = events[s]
        out[f"{s}_note_ids"] = _encode(notes_tokens, note_vocab)
        out[f"{s}_duration_ids"] = _encode(duration_tokens, duration_vocab)
        out[f"{s}_offsets"] = offsets
        out[f"{s}_pianorolls"], n = _pianorolls(np.asarray(processed[f"{s}_notes"]),
                                                np.asarray(processed[f"{s}_parts"]), cfg)
        dropped += n
    out["pianoroll_lowest_pitch"] = np.array(int(cfg.lowest_pitch), dtype=np.int64)
    out["pianoroll_tracks"] = np.array(TRACK_NAMES, dtype=str)
    high = int(cfg.lowest_pitch) + int(cfg.pitches) - 1
    print(f"tokenise: piano rolls cover MIDI {cfg.lowest_pitch}..{high}; "
          f"{dropped} note(s) outside that range dropped")
    return out


def decode_events(note_ids, duration_ids, note_vocab, duration_vocab) -> list[tuple[str, float]]:
    """Aligned id streams -> [(note token, quarter length)].

    Skipped: pad, unknown and START events, and any event without a positive length (a model may pair a
    pitch with START's "0.0"), so that every event returned can be written by :func:`events_to_midi`.
    """
    events = []
    for n, d in zip(np.asarray(note_ids).tolist(), np.asarray(duration_ids).tolist()):
        note, dur = str(note_vocab[n]), str(duration_vocab[d])
        if note in _SKIP or dur in (PAD, UNK):
            continue
        try:
            quarter = float(dur)
        except ValueError:
            continue
        if quarter > 0:
            events.append((note, quarter))
    return events


# ---------------------------------------------------------------------------------------------
# MIDI


def _write_score(score, path) -> Path:
    from gdl.atomic import atomic_file

    path = Path(path)
    with atomic_file(path) as tmp:
        score.write("midi", fp=str(tmp))
    return path


def events_to_midi(events, path, tempo_bpm: float = 90) -> Path:
    """[(note token, quarter length)] -> a one-part MIDI file; "rest" is a rest, other non-pitches skipped."""
    from music21 import exceptions21, note, stream, tempo

    part = stream.Part()
    part.append(tempo.MetronomeMark(number=tempo_bpm))
    for token, quarter in events:
        if token in _SKIP or quarter <= 0:
            continue
        if token == REST:
            part.append(note.Rest(quarterLength=quarter))
        else:
            try:
                part.append(note.Note(token, quarterLength=quarter))
            except (exceptions21.Music21Exception, ValueError):  # not a pitch name: leave it out
                continue
    return _write_score(stream.Score([part]), path)


def _as_steps(roll) -> np.ndarray:
    roll = np.asarray(roll).astype(bool)
    if roll.ndim == 4:  # (bars, steps, pitches, tracks) -> (bars*steps, pitches, tracks)
        roll = roll.reshape(-1, *roll.shape[2:])
    if roll.ndim != 3:
        raise ValueError(f"a piano roll is (steps, pitches, tracks) or (bars, steps, pitches, tracks), got {roll.shape}")
    return roll


def pianoroll_to_midi(roll, path, lowest_pitch: int, step_quarter: float = 0.25, tempo_bpm: float = 90) -> Path:
    """A piano roll -> MIDI, one part per track; consecutive steps of one pitch are one held note."""
    from music21 import note, stream, tempo

    roll = _as_steps(roll)
    steps = roll.shape[0]
    score = stream.Score()
    for track in range(roll.shape[2]):
        part = stream.Part()
        part.insert(0, tempo.MetronomeMark(number=tempo_bpm))
        padded = np.zeros((steps + 2, roll.shape[1]), np.int8)
        padded[1:-1] = roll[:, :, track]
        edges = np.diff(padded, axis=0).T  # (pitches, steps+1): +1 where a run starts, -1 one past its end
        on_pitch, on_step = np.nonzero(edges == 1)  # both ordered by (pitch, step), so runs pair up
        _, off_step = np.nonzero(edges == -1)
        for p, t0, t1 in zip(on_pitch.tolist(), on_step.tolist(), off_step.tolist()):
            part.insert(t0 * step_quarter, note.Note(midi=int(lowest_pitch) + p, quarterLength=(t1 - t0) * step_quarter))
        score.insert(0, part)
    return _write_score(score, path)


def plot_pianoroll(ax, roll, lowest_pitch: int, title: str | None = None, track_names=TRACK_NAMES):
    """Draw a piano roll on a matplotlib axis: time across, pitch up, one colour per track."""
    import matplotlib.pyplot as plt  # lazily: only the reports draw

    roll = _as_steps(roll)
    colours = plt.get_cmap("tab10").colors
    for track in range(roll.shape[2]):
        t, p = np.nonzero(roll[:, :, track])
        name = track_names[track] if track < len(track_names) else f"track {track}"
        ax.scatter(t, p + lowest_pitch, s=6, marker="s", color=colours[track % 10], label=name, linewidths=0)
    ax.set_xlim(-0.5, roll.shape[0] - 0.5)
    ax.set_xlabel("step (sixteenth note)")
    ax.set_ylabel("MIDI pitch")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", fontsize="x-small", markerscale=2)
    return ax
