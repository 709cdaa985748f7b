"""The music transformer family (gdl/families/music_transformer) on a small synthetic token file of the
chorales' layout (data/tokens/chorales.npz): training, scoring, causality, sampling, MIDI."""

import numpy as np
import pytest

from gdl import families
from gdl.sequences import OOV, PAD

FAMILY = families.get("music_transformer")


def synthetic_tokens(seed: int = 0) -> dict:
    """Voices that start with START and walk up and down a scale in a steady rhythm, as the tokenise stage
    lays them out (id 0 pad, 1 [UNK], 2 START; START's duration "0.0")."""
    rng = np.random.default_rng(seed)
    data = {"note_vocab": np.array(["", "[UNK]", "START", "rest"] + [f"{n}4" for n in "CDEFGAB"] + ["C5"]),
            "duration_vocab": np.array(["", "[UNK]", "0.0", "1.0", "0.5", "2.0"])}
    for split, voices in (("train", 24), ("val", 4), ("test", 5)):
        notes, durations, offsets = [], [], [0]
        for _ in range(voices):
            m = int(rng.integers(12, 40))
            pitch = rng.integers(4, 12, m - 1)
            notes += [2, *pitch]
            durations += [2, *(3 + (np.arange(m - 1) % 4 == 3))]
            offsets.append(offsets[-1] + m)
        data[f"{split}_note_ids"] = np.array(notes, np.int32)
        data[f"{split}_duration_ids"] = np.array(durations, np.int32)
        data[f"{split}_offsets"] = np.array(offsets, np.int64)
    return data


@pytest.fixture(scope="module")
def trained():
    import keras

    keras.utils.set_random_seed(0)
    cfg = FAMILY.config("chorales", "smoke")
    data = synthetic_tokens()
    module = FAMILY.model()
    model = module.build(cfg, data, seed=0)
    x, y, validation = module.train_arrays(data, cfg)
    model.fit(x, y, epochs=1, batch_size=16, validation_data=validation, verbose=0)
    return cfg, data, module, model


def test_profiles_are_valid():
    for profile in ("default", "smoke", "book"):
        cfg = FAMILY.config("chorales", profile)
        assert cfg.epochs >= 1 and cfg.note_embedding_dim >= 1
    book = FAMILY.config("chorales", "book")
    assert (book.seq_len, book.note_embedding_dim + book.duration_embedding_dim, book.heads, book.key_dim) == (50, 256, 5, 256)


def test_train_arrays_align_streams(trained):
    cfg, data, module, _ = trained
    (notes_in, durations_in), (notes_out, durations_out), ((val_notes, _), _) = module.train_arrays(data, cfg)
    assert notes_in.shape == durations_in.shape == notes_out.shape == durations_out.shape
    assert notes_in.shape[1] == cfg.seq_len and val_notes.shape[1] == cfg.seq_len
    np.testing.assert_array_equal(notes_in[:, 1:], notes_out[:, :-1])  # targets: the inputs one event later
    np.testing.assert_array_equal(notes_out == PAD, durations_out == PAD)  # pad where the voice ended, in both


def test_log_likelihood_matches_the_loss(trained):
    cfg, data, module, model = trained
    scores = module.token_log_likelihood(model, data, "test")
    assert set(scores) == {"note", "duration"}
    for windows, logp in scores.values():
        assert windows.dtype == np.int32 and windows.shape[1] == cfg.seq_len + 1
        assert logp.dtype == np.float64 and logp.shape == (len(windows), cfg.seq_len)
        assert np.isfinite(logp).all() and (logp <= 0).all()
    mask = scores["note"][0][:, 1:] != PAD
    nll = {s: -logp[mask].mean() for s, (_, logp) in scores.items()}
    w_notes, w_durations = scores["note"][0], scores["duration"][0]
    loss = model.evaluate((w_notes[:, :-1], w_durations[:, :-1]), (w_notes[:, 1:], w_durations[:, 1:]),
                          batch_size=len(w_notes), verbose=0, return_dict=True)
    assert nll["note"] == pytest.approx(loss["note_loss"], rel=1e-4)
    assert nll["duration"] == pytest.approx(loss["duration_loss"], rel=1e-4)


def test_causal(trained):
    """Changing event 10 of a voice changes no prediction made before it was seen."""
    _, data, module, model = trained
    before = module.token_log_likelihood(model, data, "test")
    changed = dict(data)
    for key, new in (("test_note_ids", 3), ("test_duration_ids", 5)):
        changed[key] = data[key].copy()
        changed[key][10] = new
    after = module.token_log_likelihood(model, changed, "test")
    for stream in ("note", "duration"):
        np.testing.assert_allclose(after[stream][1][0, :9], before[stream][1][0, :9], rtol=0, atol=1e-6)
        assert not np.allclose(after[stream][1][0, 10:], before[stream][1][0, 10:])
        np.testing.assert_allclose(after[stream][1][1:], before[stream][1][1:], rtol=0, atol=1e-6)


def test_samples_are_seeded_and_valid(trained):
    cfg, data, module, model = trained
    out = module.sample_outputs(model, data, 100, seed=3)
    k, length = min(100, cfg.num_pieces), 1 + cfg.sample_length
    notes, durations = out["samples"], out["sample_durations"]
    assert next(iter(out)) == "samples"
    assert notes.shape == durations.shape == (k, length) and notes.dtype == durations.dtype == np.int32
    assert (notes[:, 0] == 2).all() and (durations[:, 0] == 2).all()  # START, "0.0"
    for ids, vocab in ((notes, data["note_vocab"]), (durations, data["duration_vocab"])):
        drawn = ids[:, 1:]
        assert drawn.max() < len(vocab) and not np.isin(drawn, [PAD, OOV, 2]).any()
    again = module.sample_outputs(model, data, 100, seed=3)
    for key in out:
        np.testing.assert_array_equal(again[key], out[key])
    assert not np.array_equal(module.sample(model, k, seed=4), notes)
    np.testing.assert_array_equal(module.sample(model, 3, seed=3), module.sample(model, 3, seed=3))
    assert out["attention"].shape == (cfg.heads, length, length) and out["attention"].dtype == np.float32


def test_attention_rows_over_a_sliding_window(trained):
    """Pieces longer than seq_len: row t holds the attention of event t over the window it was drawn from."""
    cfg, _, module, model = trained
    model.cfg = cfg.model_copy(update={"sample_length": 2 * cfg.seq_len})
    try:
        notes, durations = module.generate(model, 1, seed=0)
        attention = module.attention_weights(model, notes[0], durations[0])
    finally:
        model.cfg = cfg
    length = notes.shape[1]
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, atol=1e-5)  # every row a distribution
    assert not np.triu(attention, k=1).any()  # causal: nothing from the future
    t = length - 1  # the last row: only the seq_len events ending at it
    assert not attention[:, t, :t - cfg.seq_len + 1].any()


def test_write_midi(trained, tmp_path):
    music = pytest.importorskip("gdl.music")
    _, data, module, model = trained
    out = module.sample_outputs(model, data, 2, seed=0)
    paths = module.write_midi(out, tmp_path / "midi")
    assert len(paths) == len(out["samples"])
    import music21

    for i, path in enumerate(paths):
        events = music.decode_events(out["samples"][i], out["sample_durations"][i], out["note_vocab"],
                                     out["duration_vocab"])
        score = music21.converter.parse(str(path)).stripTies()  # notes across a barline come back tied
        written = [(n.nameWithOctave, float(n.quarterLength)) for n in score.flatten().notes]
        assert written == [e for e in events if e[0] != "rest"]
