"""The MuseGAN paper's objective metrics (Dong et al. 2018), on binary piano rolls (numpy only).

A piano roll is (n, bars, steps, pitches, tracks) in {0, 1}; pitch index p is MIDI pitch lowest + p. Every
statistic is computed per track and bar, then averaged; each has a per-piece value so its noise can be
bootstrapped over pieces.

* EB, empty bars: the share of (bar, track) pairs with no note at all.
* UPC, used pitch classes: how many of the 12 pitch classes a track uses in a bar (non-empty bars only).
* QN, qualified notes: the share of notes that last at least `QUALIFIED_STEPS` steps. The paper counts
  notes of >= 3 steps at 24 steps per beat (a 32nd note) as qualified, to flag the fragmented output GANs
  tend to give; at 4 steps per beat (sixteenths) every note is >= a 32nd, so here a note qualifies from an
  eighth (2 steps) on: a chorale voice is mostly eighths and longer, random notes mostly single sixteenths.
* TD, tonal distance: per bar and pair of non-empty tracks, the distance between their tonal centroids
  (Harte et al. 2006: the chroma projected on the circles of fifths, minor thirds and major thirds); low
  means the two voices sit in the same harmony.
A note is a run of consecutive 1s of one pitch in one track (within a piece, across bar lines).
"""

from __future__ import annotations

import numpy as np

QUALIFIED_STEPS = 2
STATS = ("eb", "upc", "qn", "td")


def _tonal_matrix() -> np.ndarray:
    """(6, 12): Harte's tonal centroid transform, radii 1 (fifths), 1 (minor thirds), 0.5 (major thirds)."""
    l = np.arange(12)
    return np.stack([np.sin(l * 7 * np.pi / 6), np.cos(l * 7 * np.pi / 6),
                     np.sin(l * 3 * np.pi / 2), np.cos(l * 3 * np.pi / 2),
                     0.5 * np.sin(l * 2 * np.pi / 3), 0.5 * np.cos(l * 2 * np.pi / 3)])


TONAL = _tonal_matrix()


def chroma(rolls: np.ndarray, lowest_pitch: int) -> np.ndarray:
    """(n, bars, 12, tracks): active steps per pitch class in each bar and track."""
    n, bars, steps, pitches, tracks = rolls.shape
    classes = (lowest_pitch + np.arange(pitches)) % 12
    per_pitch = rolls.sum(axis=2)  # (n, bars, pitches, tracks)
    out = np.zeros((n, bars, 12, tracks))
    for c in range(12):
        out[:, :, c] = per_pitch[:, :, classes == c].sum(axis=2)
    return out


def note_lengths(rolls: np.ndarray) -> list[np.ndarray]:
    """Per piece: the length in steps of every note (runs of 1s of one pitch and track over time)."""
    n, bars, steps, pitches, tracks = rolls.shape
    time = rolls.reshape(n, bars * steps, pitches * tracks).astype(np.int8)
    padded = np.concatenate([np.zeros((n, 1, pitches * tracks), np.int8), time,
                             np.zeros((n, 1, pitches * tracks), np.int8)], axis=1)
    edges = np.diff(padded, axis=1)  # +1 at a note's start, -1 after its end
    out = []
    for i in range(n):
        starts = np.argwhere(edges[i] == 1)
        ends = np.argwhere(edges[i] == -1)
        # argwhere walks time-major: sort both by (column, time) so starts and ends pair up
        starts = starts[np.lexsort((starts[:, 0], starts[:, 1]))]
        ends = ends[np.lexsort((ends[:, 0], ends[:, 1]))]
        out.append(ends[:, 0] - starts[:, 0])
    return out


def playing(rolls: np.ndarray) -> np.ndarray:
    """(n, bars, tracks): whether each track sounds at all in each bar (False: a whole-bar rest, what EB counts)."""
    return (np.asarray(rolls) > 0).any(axis=(2, 3))


def per_piece(rolls: np.ndarray, lowest_pitch: int) -> dict[str, np.ndarray]:
    """Each statistic's value per piece (NaN where a piece has nothing to measure it on), plus QN's parts."""
    rolls = np.asarray(rolls) > 0
    n, bars, steps, pitches, tracks = rolls.shape
    active = playing(rolls)  # (n, bars, tracks)
    eb = 1.0 - active.mean(axis=(1, 2))
    ch = chroma(rolls, lowest_pitch)
    used = (ch > 0).sum(axis=2).astype(float)  # (n, bars, tracks)
    with np.errstate(invalid="ignore"):
        upc = np.where(active.sum(axis=(1, 2)) > 0, (used * active).sum(axis=(1, 2)) / active.sum(axis=(1, 2)), np.nan)
        norm = ch / np.maximum(ch.sum(axis=2, keepdims=True), 1e-12)
    centroid = np.einsum("dc,nbct->nbdt", TONAL, norm)  # (n, bars, 6, tracks)
    distances, counts = np.zeros(n), np.zeros(n)
    for a in range(tracks):
        for b in range(a + 1, tracks):
            both = active[:, :, a] & active[:, :, b]
            d = np.linalg.norm(centroid[:, :, :, a] - centroid[:, :, :, b], axis=2)
            distances += (d * both).sum(axis=1)
            counts += both.sum(axis=1)
    with np.errstate(invalid="ignore"):
        td = np.where(counts > 0, distances / np.maximum(counts, 1), np.nan)
    lengths = note_lengths(rolls)
    qualified = np.array([(ln >= QUALIFIED_STEPS).sum() for ln in lengths], float)
    notes = np.array([len(ln) for ln in lengths], float)
    return {"eb": eb, "upc": upc, "td": td, "qualified": qualified, "notes": notes}


def _figures(values: dict[str, np.ndarray], index: np.ndarray | None = None) -> dict[str, float]:
    v = values if index is None else {k: a[index] for k, a in values.items()}
    return {"eb": float(np.mean(v["eb"])), "upc": float(np.nanmean(v["upc"])) if np.isfinite(v["upc"]).any() else float("nan"),
            "qn": float(v["qualified"].sum() / max(v["notes"].sum(), 1.0)),
            "td": float(np.nanmean(v["td"])) if np.isfinite(v["td"]).any() else float("nan")}


def statistics(rolls: np.ndarray, lowest_pitch: int, bootstrap: int = 0, seed: int = 0) -> dict[str, float]:
    """EB, UPC, QN, TD of a set of pieces, with `<stat>_std` over `bootstrap` resamples of the pieces."""
    values = per_piece(rolls, lowest_pitch)
    out = _figures(values)
    if bootstrap >= 2 and len(rolls) >= 2:
        rng = np.random.default_rng(seed)
        draws = [_figures(values, rng.integers(0, len(rolls), len(rolls))) for _ in range(bootstrap)]
        for k in STATS:
            out[f"{k}_std"] = float(np.nanstd([d[k] for d in draws], ddof=1))
    return out


def density_baseline(train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n random piano rolls with the training data's note density per pitch and track: each cell an
    independent coin with that (pitch, track)'s frequency of being on."""
    p = np.asarray(train, float).mean(axis=(0, 1, 2))  # (pitches, tracks)
    rng = np.random.default_rng(seed)
    return (rng.random((n, *train.shape[1:])) < p).astype(np.uint8)


def stat_gap(figures: dict, data: dict, baseline: dict) -> float:
    """How far EB, UPC, QN and TD are from the data's, each as a share of how far random notes are
    (averaged over the four): 0 = the data's statistics, about 1 = as far off as random notes. The share is
    of |baseline - data| + 10% of |data|: a floor, so that a statistic random notes happen to match (they
    almost never leave a bar empty, nor do the chorales) cannot blow the ratio up."""
    gaps = [abs(figures[k] - data[k]) / (abs(baseline[k] - data[k]) + 0.1 * abs(data[k]) + 1e-9) for k in STATS]
    return float(np.mean(gaps))
