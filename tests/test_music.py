"""gdl.music (token streams, piano rolls, MIDI) and the chorales' download sources (jsb, midi).

Everything runs on small synthetic data in tmp_path; the download sources are served by a real HTTP
server on loopback, with fixture files made here and pinned to their own SHA-256.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import http.server
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from gdl import music
from gdl.arrays import DataFileError
from gdl.data import chorales
from gdl.download import ChecksumError
from gdl.params import ChoralesData

ROLL = types.SimpleNamespace(bars=2, steps_per_bar=16, pitches=84, lowest_pitch=24)  # the book's layout


def processed(splits: dict[str, list[tuple[int, list[tuple[int, int, int, int]]]]]) -> dict[str, np.ndarray]:
    """A processed chorales dict: {split: [(parts, [(part, onset, duration, pitch), ...]) per chorale]}."""
    out = {}
    for split in music.SPLITS:
        pieces = splits.get(split, [])
        rows = [(c, *note) for c, (_, notes) in enumerate(pieces) for note in notes]
        out[f"{split}_notes"] = np.array(rows, dtype=np.int32).reshape(-1, 5)
        out[f"{split}_parts"] = np.array([p for p, _ in pieces], dtype=np.int64)
    return out


def events(data: dict, split: str, s: int) -> list[tuple[str, str]]:
    """Sequence s of a split as (note token, duration token) strings."""
    a, b = data[f"{split}_offsets"][s], data[f"{split}_offsets"][s + 1]
    return [(str(data["note_vocab"][n]), str(data["duration_vocab"][d]))
            for n, d in zip(data[f"{split}_note_ids"][a:b], data[f"{split}_duration_ids"][a:b])]


# A four-part chorale (plus a fifth instrument, ignored) and a two-part one.
TRAIN = [
    (5, [(0, 0, 4, 72), (0, 4, 4, 74), (0, 12, 4, 72),      # soprano: a gap of 4 sixteenths -> a rest
         (1, 0, 8, 60), (1, 0, 8, 64), (1, 6, 2, 62),       # alto: a chord (E4 kept), cut where D4 starts
         (2, 4, 4, 55),                                     # tenor: enters late -> a leading rest
         (3, 0, 16, 48),                                    # bass
         (4, 0, 16, 90)]),                                  # 5th part: not a voice
    (2, [(0, 0, 4, 60), (1, 0, 4, 52)]),
]
VAL = [(4, [(0, 0, 3, 61), (1, 0, 4, 60), (2, 0, 4, 55), (3, 0, 4, 48)])]  # C#4 and 0.75 unseen in training


def test_tokenise_streams() -> None:
    data = music.tokenise(processed({"train": TRAIN, "val": VAL, "test": TRAIN[:1]}), ROLL)
    assert list(data["train_offsets"]) == [0, 5, 8, 11, 13, 15, 17]  # 4 + 2 voices, each from START
    assert events(data, "train", 0) == [("START", "0.0"), ("C5", "1.0"), ("D5", "1.0"), ("rest", "1.0"),
                                        ("C5", "1.0")]
    assert events(data, "train", 1) == [("START", "0.0"), ("E4", "1.5"), ("D4", "0.5")]  # highest kept
    assert events(data, "train", 2) == [("START", "0.0"), ("rest", "1.0"), ("G3", "1.0")]
    assert events(data, "train", 3) == [("START", "0.0"), ("C3", "4.0")]
    assert events(data, "train", 4) == [("START", "0.0"), ("C4", "1.0")]
    for split in music.SPLITS:
        assert data[f"{split}_note_ids"].dtype == np.int32 and data[f"{split}_duration_ids"].dtype == np.int32
        assert data[f"{split}_offsets"].dtype == np.int64
        assert len(data[f"{split}_note_ids"]) == len(data[f"{split}_duration_ids"]) == data[f"{split}_offsets"][-1]

    # Vocabularies: pad, unk, START's token, then by descending training count, ties by string.
    for stream, start in (("note", "START"), ("duration", "0.0")):
        vocab = [str(t) for t in data[f"{stream}_vocab"]]
        assert vocab[:3] == ["", "[UNK]", start]
        counts = collections.Counter(vocab[i] for i in data[f"train_{stream}_ids"] if vocab[i] != start)
        assert vocab[3:] == sorted(counts, key=lambda t: (-counts[t], t))
    assert events(data, "val", 0)[1] == ("[UNK]", "[UNK]")  # C#4 for 0.75: neither seen in training
    assert data["val_note_ids"][1] == 1 and data["val_duration_ids"][1] == 1

    # Names round-trip through music21.
    from music21 import pitch
    assert all(pitch.Pitch(t).midi == m for m, t in enumerate(music.pitch_names()) if m >= 12)
    assert music.pitch_names()[61] == "C#4"


def test_tokenise_is_deterministic_and_order_free() -> None:
    base = processed({"train": TRAIN, "val": VAL, "test": VAL})
    shuffled = dict(base)
    shuffled["train_notes"] = base["train_notes"][np.random.default_rng(0).permutation(len(base["train_notes"]))]
    a, b, c = music.tokenise(base, ROLL), music.tokenise(base, ROLL), music.tokenise(shuffled, ROLL)
    assert sorted(a) == sorted(b) == sorted(c)
    for key in a:
        assert np.array_equal(a[key], b[key]) and np.array_equal(a[key], c[key]), key


def test_pianoroll_layout(capsys) -> None:
    cfg = types.SimpleNamespace(bars=2, steps_per_bar=2, pitches=24, lowest_pitch=48)  # phrases of 4 steps
    piece = [(0, 0, 4, 72), (0, 0, 2, 71),   # soprano: 72 is out of range (48..71): dropped, 71 stays
             (1, 0, 2, 60), (1, 0, 2, 64),   # alto: a chord, 64 kept
             (1, 12, 3, 62),                 # alto again at step 12 (steps 4..11 are silent in every track)
             (2, 1, 1, 50), (3, 0, 1, 30),   # bass 30: out of range
             (3, 15, 2, 48)]                 # ends at 17: the phrase from 16 is incomplete, dropped
    data = music.tokenise(processed({"train": [(4, piece), (3, [(0, 0, 8, 60)])]}), cfg)
    assert "2 note(s) outside that range dropped" in capsys.readouterr().out
    rolls = data["train_pianorolls"]
    assert rolls.shape == (2, 2, 2, 24, 4) and rolls.dtype == np.uint8  # phrases at 0 and 12; 4 and 8 are silent
    flat = rolls.reshape(2, 4, 24, 4)  # (phrase, step, pitch, track)
    on = {(int(p), int(t), int(k) + 48, int(v)) for p, t, k, v in zip(*np.nonzero(flat))}
    assert on == {(0, 0, 71, 0), (0, 1, 71, 0), (0, 0, 64, 1), (0, 1, 64, 1), (0, 1, 50, 2),
                  (1, 0, 62, 1), (1, 1, 62, 1), (1, 2, 62, 1), (1, 3, 48, 3)}
    assert int(data["pianoroll_lowest_pitch"]) == 48 and data["pianoroll_lowest_pitch"].dtype == np.int64
    assert list(data["pianoroll_tracks"]) == ["soprano", "alto", "tenor", "bass"]
    assert data["val_pianorolls"].shape == (0, 2, 2, 24, 4)


def _notes_of(path: Path) -> list[list[tuple]]:
    from music21 import converter

    score = converter.parse(str(path), forceSource=True)
    return [[("rest" if n.isRest else n.pitch.nameWithOctave, float(n.offset), float(n.quarterLength))
             for n in part.flatten().notesAndRests] for part in score.parts]


def test_events_round_trip(tmp_path: Path) -> None:
    vocab_n = np.array(["", "[UNK]", "START", "rest", "C#4", "B-3", "E5"])
    vocab_d = np.array(["", "[UNK]", "0.0", "1.0", "0.5", "1.5", "0.25"])
    ids_n, ids_d = [2, 4, 3, 5, 1, 6, 4, 0], [2, 3, 4, 5, 3, 6, 2, 0]  # the 2nd C#4 has START's 0.0
    got = music.decode_events(ids_n, ids_d, vocab_n, vocab_d)
    assert got == [("C#4", 1.0), ("rest", 0.5), ("B-3", 1.5), ("E5", 0.25)]  # START, unk, 0.0, pad skipped
    path = music.events_to_midi([("START", 0.0)] + got, tmp_path / "a.mid")
    (part,) = _notes_of(path)
    assert part[:4] == [("C#4", 0.0, 1.0), ("rest", 1.0, 0.5), ("B-3", 1.5, 1.5), ("E5", 3.0, 0.25)]
    assert all(n[0] == "rest" for n in part[4:])  # music21 may pad the last bar with a rest
    assert not list(tmp_path.glob(".tmp-*"))


def test_pianoroll_to_midi_and_plot(tmp_path: Path) -> None:
    roll = np.zeros((2, 4, 12, 2), np.uint8)  # (bars, steps, pitches, tracks), lowest pitch 60
    roll[0, 0:3, 4, 0] = 1      # E4 held 3 steps
    roll[1, 0:2, 4, 0] = 1      # E4 again after a 1-step gap
    roll[0, 2:4, 0, 1] = 1      # C4 on track 1 across the bar line...
    roll[1, 0, 0, 1] = 1        # ...one held note of 3 steps
    path = music.pianoroll_to_midi(roll, tmp_path / "r.mid", lowest_pitch=60)
    parts = [[n for n in p if n[0] != "rest"] for p in _notes_of(path)]
    assert parts == [[("E4", 0.0, 0.75), ("E4", 1.0, 0.5)], [("C4", 0.5, 0.75)]]

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    music.plot_pianoroll(ax, roll, 60, title="t")
    assert len(ax.collections) == 2 and ax.get_title() == "t"
    plt.close(fig)


# ---------------------------------------------------------------- download sources -------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def www(tmp_path: Path):
    """A loopback HTTP server over tmp_path/www: yields put(name, bytes) -> URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()

    def put(name: str, data: bytes) -> str:
        (root / name).write_bytes(data)
        return f"http://127.0.0.1:{httpd.server_address[1]}/{name}"

    try:
        yield put
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    """An empty working folder: the sources write data/downloads/... relative to it, never to the repo."""
    d = tmp_path / "work"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


def jsb_fixture(tmp_path: Path) -> bytes:
    """A tiny Jsb16thSeparated.npz: object arrays of (T, 4) float chorales, NaN for rests (pickled)."""
    nan = np.nan
    a = np.array([[74, 70, 65, 58]] * 8 + [[74, 70, 63, 58]] * 4 + [[72, nan, 63, 56]] * 4
                 + [[72, 69, 60, 53]] * 24, dtype=np.float64)  # 40 steps: one full 2-bar phrase
    b = np.array([[67, 64, 60, 48]] * 34, dtype=np.float64)
    c = np.array([[69, 65, 60, 41]] * 32, dtype=np.float64)

    def obj(*pieces):
        out = np.empty(len(pieces), dtype=object)
        out[:] = list(pieces)
        return out

    path = tmp_path / "fixture.npz"
    np.savez(path, train=obj(a, b), valid=obj(c), test=obj(b))
    return path.read_bytes()


def test_jsb_source(tmp_path: Path, www, work: Path) -> None:
    blob = jsb_fixture(tmp_path)
    cfg = ChoralesData(source="jsb", jsb_url=www("Jsb16thSeparated.npz", blob), jsb_sha256=sha(blob))
    raw = chorales.acquire(cfg, 0)
    assert list(raw["names"]) == ["jsb/train/0000", "jsb/train/0001", "jsb/valid/0000", "jsb/test/0000"]
    assert list(raw["parts"]) == [4] * 4 and list(raw["part_names"][0]) == ["Soprano", "Alto", "Tenor", "Bass"]
    assert list(raw["key_sharps"]) == [0] * 4 and list(raw["time_numerator"]) == [4] * 4
    first = raw["notes"][raw["notes"][:, 0] == 0].tolist()
    # Runs of one pitch are one note; the alto's NaN steps are a rest (no row).
    assert first == [[0, 0, 0, 12, 74], [0, 0, 12, 28, 72],
                     [0, 1, 0, 12, 70], [0, 1, 16, 24, 69],
                     [0, 2, 0, 8, 65], [0, 2, 8, 8, 63], [0, 2, 16, 24, 60],
                     [0, 3, 0, 12, 58], [0, 3, 12, 4, 56], [0, 3, 16, 24, 53]]
    assert raw["notes"].dtype == np.int32
    assert (work / "data/downloads/Jsb16thSeparated.npz").is_file()

    # ... and on to piano rolls, as the tokenise stage makes them.
    proc = chorales.preprocess(raw, types.SimpleNamespace(val_fraction=0.25, test_fraction=0.25), 0)
    rolls = music.tokenise(proc, ROLL)
    total = sum(len(rolls[f"{s}_pianorolls"]) for s in music.SPLITS)
    assert total == 4  # one 32-step phrase per chorale; the steps after it are an incomplete phrase


def test_jsb_tampered_leaves_nothing(tmp_path: Path, www, work: Path, monkeypatch) -> None:
    blob = jsb_fixture(tmp_path)
    tampered = blob[:-10] + b"\0" * 10
    cfg = ChoralesData(source="jsb", jsb_url=www("Jsb16thSeparated.npz", tampered), jsb_sha256=sha(blob))
    monkeypatch.setattr(chorales, "read_jsb", lambda path: pytest.fail("an unverified archive was opened"))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        chorales.acquire(cfg, 0)
    assert not (work / "data/raw").exists()
    assert not [p for p in work.rglob("*") if p.is_file()]  # no download, no temp file


def test_jsb_corrupt_archive(tmp_path: Path, www, work: Path) -> None:
    junk = b"PK\x03\x04 not really a zip" * 50
    cfg = ChoralesData(source="jsb", jsb_url=www("Jsb16thSeparated.npz", junk), jsb_sha256=sha(junk))
    with pytest.raises(DataFileError, match="Jsb16thSeparated.npz: not a readable JSB chorales archive"):
        chorales.acquire(cfg, 0)
    assert not (work / "data/raw").exists()


def test_midi_source_bad_files(tmp_path: Path, www, work: Path, capsys) -> None:
    good = music.events_to_midi([("C4", 1.0), ("rest", 0.5), ("E4", 1.5)] * 4, tmp_path / "good.mid").read_bytes()
    cut = good[: len(good) // 2]
    assert chorales.midi_problem(tmp_path / "good.mid") is None
    urls = [www("good.mid", good), www("cut.mid", cut)]
    cfg = ChoralesData(source="midi", midi_urls=urls, midi_sha256=[sha(good), sha(cut)], on_bad_file="skip")

    raw = chorales.acquire(cfg, 0)
    out = capsys.readouterr()
    assert list(raw["names"]) == ["midi/good.mid"] and list(raw["parts"]) == [1]
    assert raw["notes"][:2].tolist() == [[0, 0, 0, 4, 60], [0, 0, 6, 6, 64]]
    assert "1 of 2 MIDI files read, 1 bad file(s) skipped: midi/cut.mid" in out.out
    assert "midi/cut.mid" in out.err and "truncated" in out.err

    with pytest.raises(DataFileError, match=r"bad MIDI file midi/cut\.mid: truncated"):
        chorales.acquire(cfg.model_copy(update={"on_bad_file": "fail"}), 0)

    # A checksum mismatch is a bad file too: never kept, never parsed.
    wrong = cfg.model_copy(update={"midi_sha256": [sha(good), sha(b"something else")]})
    raw = chorales.acquire(wrong, 0)
    assert list(raw["names"]) == ["midi/good.mid"]
    assert "checksum mismatch" in capsys.readouterr().err
    assert sorted(p.name for p in (work / "data/downloads/midi").iterdir()) == sorted(
        [f"{sha(good)[:12]}-good.mid", f"{sha(cut)[:12]}-cut.mid"])


def test_midi_params_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="one SHA-256 per URL"):
        ChoralesData(source="midi", midi_urls=["http://x/a.mid"], midi_sha256=[])
    with pytest.raises(ValidationError, match="not a SHA-256"):
        ChoralesData(source="midi", midi_urls=["http://x/a.mid"], midi_sha256=["abc"])
    with pytest.raises(ValidationError, match="needs midi_urls"):
        ChoralesData(source="midi")
    assert ChoralesData().source == "embedded" and ChoralesData().on_bad_file == "skip"
