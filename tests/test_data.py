"""Data stages: acquire/preprocess of every dataset, deterministic files, corrupt files, stage CLIs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gdl.arrays import DataFileError, load_arrays, save_arrays
from gdl.data import DATASETS, chorales, digits, get
from gdl.data.splits import split_indices
from gdl.params import profile

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")


def small_params():
    params = profile("smoke")
    params.data.chorales = params.data.chorales.model_copy(update={"max_files": 5})
    return params


def run_dataset(name: str, params=None):
    params = params or small_params()
    module = get(name)
    raw = module.acquire(getattr(params.data, name), params.seed)
    processed = module.preprocess(raw, getattr(params.preprocess, name), params.seed)
    return raw, processed


@pytest.fixture(scope="module")
def results():
    """Each dataset acquired and preprocessed twice (fresh calls), for the determinism checks."""
    return {name: (run_dataset(name), run_dataset(name)) for name in DATASETS}


def check_common(raw, processed):
    for arrays in (raw, processed):
        for key, arr in arrays.items():
            assert not arr.dtype.hasobject, key
    # every split-specific array exists for all three splits
    stems = {key.split("_", 1)[1] for key in processed if key.split("_", 1)[0] in SPLITS}
    assert stems and all(f"{s}_{stem}" in processed for s in SPLITS for stem in stems)


def split_sizes(processed, key):
    return [len(processed[f"{s}_{key}"]) for s in SPLITS]


# ---------------------------------------------------------------- determinism -----------------------
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_files_are_byte_identical(results, name, tmp_path):
    (raw1, proc1), (raw2, proc2) = results[name]
    for kind, a, b in (("raw", raw1, raw2), ("processed", proc1, proc2)):
        p1 = save_arrays(tmp_path / "1" / f"{kind}.npz", a)
        p2 = save_arrays(tmp_path / "2" / f"{kind}.npz", b)
        assert p1.read_bytes() == p2.read_bytes(), f"{name} {kind} differs between runs"
        back = load_arrays(p1)
        assert sorted(back) == sorted(a)
        for key in a:
            np.testing.assert_array_equal(back[key], a[key])
            assert back[key].dtype == a[key].dtype


# ---------------------------------------------------------------- datasets --------------------------
def test_digits(results):
    raw, proc = results["digits"][0]
    check_common(raw, proc)
    assert raw["images"].dtype == np.uint8 and raw["images"].shape == (1797, 8, 8)
    assert raw["images"].max() == 16 and raw["labels"].dtype == np.int64
    size = small_params().preprocess.digits.image_size
    assert sum(split_sizes(proc, "x")) == 1797
    for s in SPLITS:
        x, y = proc[f"{s}_x"], proc[f"{s}_y"]
        assert x.dtype == np.float32 and x.shape[1:] == (size, size, 1) and len(y) == len(x)
        assert x.min() >= 0.0 and x.max() <= 1.0
        levels = x * 255.0
        np.testing.assert_allclose(levels, np.rint(levels), atol=1e-3)  # the 256 levels k/255
        assert set(np.unique(y)) == set(range(10))  # stratified: every class everywhere


def test_digits_default_size_and_mnist_padding():
    params = profile("default")
    _, proc = run_dataset("digits", params)
    assert proc["train_x"].shape[1:] == (32, 32, 1)
    assert len(np.unique(proc["train_x"])) <= 256
    # 28x28 MNIST-like input: padded by 2 pixels to 32x32, values untouched (already k/255).
    img = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    out = digits.resize(img / 255.0, 32)
    assert out.shape == (3, 32, 32)
    np.testing.assert_array_equal(out[:, 2:30, 2:30], img / 255.0)
    assert not out[:, :2].any() and not out[:, :, -2:].any()
    assert digits.resize(img / 255.0, 16).shape == (3, 16, 16)


def test_book_digits_loading(tmp_path, monkeypatch):
    """MNIST's file layout (28x28, 0..255, train + test halves), without the network."""
    import gdl.download

    rng = np.random.default_rng(0)
    fake = tmp_path / "mnist.npz"
    arrays = {"x_train": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
              "y_train": np.arange(60, dtype=np.uint8) % 10,
              "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "y_test": np.arange(20, dtype=np.uint8) % 10}
    np.savez(fake, **arrays)
    calls = []
    monkeypatch.setattr(gdl.download, "fetch", lambda url, dest, sha256: calls.append((url, sha256)) or fake)
    params = profile("book")
    raw = digits.acquire(params.data.digits, params.seed)
    assert calls == [(digits.MNIST_URL, digits.MNIST_SHA256)]
    assert raw["images"].shape == (80, 28, 28) and raw["images"].dtype == np.uint8
    assert raw["labels"].dtype == np.int64
    proc = digits.preprocess(raw, params.preprocess.digits, params.seed)
    x = np.concatenate([proc[f"{s}_x"] for s in SPLITS])
    assert x.shape == (80, 32, 32, 1) and not x[:, :2].any()
    assert sorted(np.rint(x[:, 2:30, 2:30, 0] * 255).astype(np.uint8).ravel()) == \
        sorted(raw["images"].ravel())  # padded, not resampled: the same pixel values


def test_moons(results):
    raw, proc = results["moons"][0]
    check_common(raw, proc)
    n = small_params().data.moons.n_samples
    assert raw["points"].shape == (n, 2) and raw["points"].dtype == np.float64
    assert set(np.unique(raw["labels"])) == {0, 1}
    assert sum(split_sizes(proc, "x")) == n
    train = proc["train_x"].astype(np.float64)
    assert proc["train_x"].dtype == np.float32
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1.0, atol=1e-5)
    # mean/std map the standardised points back to the raw ones
    train_idx, _, _ = split_indices(n, 0.1, 0.1, small_params().seed, stratify=raw["labels"])
    np.testing.assert_allclose(train * proc["std"] + proc["mean"], raw["points"][train_idx], atol=1e-5)


def test_shapes(results):
    raw, proc = results["shapes"][0]
    check_common(raw, proc)
    cfg = small_params().data.shapes
    n, size = cfg.n_samples, cfg.image_size
    assert raw["images"].shape == (n, size, size, 3) and raw["images"].dtype == np.uint8
    for key in ("shape", "colour", "background"):
        assert raw[key].dtype == np.int64
        assert 0 <= raw[key].min() and raw[key].max() < len(raw[f"{key}_names"])
        assert raw[f"{key}_names"].dtype.kind == "U"
    for key in ("size", "x", "y"):
        assert raw[key].dtype == np.float32
    assert np.all(raw["x"] - raw["size"] >= 0) and np.all(raw["x"] + raw["size"] <= size)
    # anti-aliased: some pixels are strictly between the background and the shape colour
    first = raw["images"][0].reshape(-1, 3)
    assert len(np.unique(first, axis=0)) > 2
    assert sum(split_sizes(proc, "x")) == n
    names = list(proc["attribute_names"])
    for s in SPLITS:
        x, y, attrs = proc[f"{s}_x"], proc[f"{s}_y"], proc[f"{s}_attributes"]
        assert x.dtype == np.float32 and x.shape[1:] == (size, size, 3)
        assert 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_allclose(x * 255, np.rint(x * 255), atol=1e-3)
        assert attrs.shape == (len(x), len(names)) and attrs.dtype == np.float32
        np.testing.assert_array_equal(attrs[:, names.index("shape")], y)
        assert set(np.unique(y)) == set(range(len(raw["shape_names"])))


def test_shape_pixels_match_labels():
    from gdl.data import shapes

    raw = shapes.acquire(small_params().data.shapes, 0)
    colours = np.array(list(shapes.COLOURS.values()))
    backgrounds = np.array(list(shapes.BACKGROUNDS.values()))
    size = raw["images"].shape[1]
    centres = np.arange(size) + 0.5
    for i in range(20):
        img = raw["images"][i]
        x, y, r = raw["x"][i], raw["y"][i], raw["size"][i]
        # the pixel holding the centre shows the shape's colour ...
        np.testing.assert_array_equal(img[int(y), int(x)], colours[raw["colour"][i]])
        # ... and every pixel well outside the bounding circle (a square's reaches r*sqrt(2)) the background
        far = np.hypot(centres[None, :] - x, centres[:, None] - y) > r * np.sqrt(2) + 1
        assert far.any()
        np.testing.assert_array_equal(img[far], np.broadcast_to(backgrounds[raw["background"][i]], img[far].shape))


def test_text(results):
    raw, proc = results["text"][0]
    check_common(raw, proc)
    assert raw["names"].dtype.kind == "U" and raw["texts"].dtype.kind == "U"
    assert list(raw["names"]) == sorted(raw["names"])
    assert min(len(t) for t in raw["texts"]) >= small_params().data.text.min_chars
    assert len(raw["names"]) > 20
    names = [set(proc[f"{s}_names"]) for s in SPLITS]
    assert all(names) and not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert set().union(*names) == set(raw["names"])
    lookup = dict(zip(raw["names"], raw["texts"]))
    for s in SPLITS:
        for name, text in zip(proc[f"{s}_names"], proc[f"{s}_texts"]):
            assert lookup[name] == text


def test_chorales(results):
    raw, proc = results["chorales"][0]
    check_common(raw, proc)
    notes = raw["notes"]
    assert notes.dtype == np.int32 and notes.shape[1] == 5
    c = len(raw["names"])
    assert c == 5 and raw["names"].dtype.kind == "U" and raw["names"][0] == "bach/bwv1.6.mxl"
    for key in ("parts", "key_sharps", "time_numerator", "time_denominator"):
        assert raw[key].shape == (c,) and raw[key].dtype == np.int64
    assert raw["part_names"].shape[0] == c
    assert set(np.unique(notes[:, 0])) == set(range(c))
    assert np.all(notes[:, 1] < raw["parts"][notes[:, 0]])
    assert notes[:, 2].min() >= 0 and notes[:, 3].min() >= 1
    assert 24 <= notes[:, 4].min() and notes[:, 4].max() <= 96
    assert np.all(np.diff(notes[:, 0]) >= 0)
    # a split by chorale, renumbered within each split, covering every note exactly once
    assert sum(len(proc[f"{s}_names"]) for s in SPLITS) == c
    assert sum(len(proc[f"{s}_notes"]) for s in SPLITS) == len(notes)
    seen = []
    for s in SPLITS:
        k = len(proc[f"{s}_names"])
        assert k >= 1
        ids = proc[f"{s}_notes"][:, 0]
        assert set(np.unique(ids)) == set(range(k))
        for i, name in enumerate(proc[f"{s}_names"]):
            original = int(np.flatnonzero(raw["names"] == name)[0])
            np.testing.assert_array_equal(proc[f"{s}_notes"][ids == i, 1:], notes[notes[:, 0] == original, 1:])
        seen += list(proc[f"{s}_names"])
    assert sorted(seen) == sorted(raw["names"])


def test_chorale_corpus_selection():
    files = chorales.corpus_files()
    names = [n for n, _ in files]
    assert len(files) > 400 and names == sorted(names)  # sorted path order
    assert not any(n.endswith(".rntxt") for n in names)
    stems = [Path(n).stem for n in names]
    assert len(stems) == len(set(stems))  # no chorale twice (.krn duplicates of .mxl dropped)


def test_chorale_versions_stay_in_one_split():
    names = ["bach/bwv18.5-lz.mxl", "bach/bwv18.5-w.mxl", "bach/bwv190.7.mxl", "bach/bwv190.7-inst.mxl"]
    names += [f"bach/bwv{i}.6.mxl" for i in range(1, 30)]
    c = len(names)
    raw = {
        "notes": np.array([[i, 0, 0, 4, 60 + i % 12] for i in range(c)], dtype=np.int32),
        "names": np.array(names),
        **{k: np.zeros(c, dtype=np.int64) for k in ("parts", "key_sharps", "time_numerator", "time_denominator")},
        "part_names": np.full((c, 1), "Soprano"),
    }
    cfg = small_params().preprocess.chorales.model_copy(update={"val_fraction": 0.3, "test_fraction": 0.3})
    for seed in range(10):
        proc = chorales.preprocess(raw, cfg, seed)
        where = {name: s for s in SPLITS for name in proc[f"{s}_names"]}
        assert len(where) == c
        assert where[names[0]] == where[names[1]] and where[names[2]] == where[names[3]]


def test_chorales_parallel_matches_serial(results, monkeypatch):
    serial = results["chorales"][0][0]
    monkeypatch.setattr(chorales, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(chorales, "_workers", lambda: 2)
    parallel = chorales.acquire(small_params().data.chorales, 0)
    assert sorted(parallel) == sorted(serial)
    for key in serial:
        np.testing.assert_array_equal(parallel[key], serial[key])


# ---------------------------------------------------------------- splits ----------------------------
def test_split_indices():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    for stratify in (None, labels):
        tr, va, te = split_indices(100, 0.1, 0.2, 7, stratify=stratify)
        assert (len(tr), len(va), len(te)) == (70, 10, 20)
        assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(100))
        for part in (tr, va, te):
            assert np.all(np.diff(part) > 0)
        again = split_indices(100, 0.1, 0.2, 7, stratify=stratify)
        assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert list(np.bincount(labels[te], minlength=3)) == [10, 6, 4]
    assert list(np.bincount(labels[va], minlength=3)) == [5, 3, 2]
    assert not np.array_equal(split_indices(100, 0.1, 0.2, 8)[2], split_indices(100, 0.1, 0.2, 7)[2])
    assert [len(p) for p in split_indices(5, 0.1, 0.1, 0)] == [3, 1, 1]


# ---------------------------------------------------------------- array files -----------------------
def test_save_arrays_layout(tmp_path):
    path = save_arrays(tmp_path / "a" / "b" / "x.npz", {"b": np.arange(3), "a": np.eye(2).T})
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["a.npy", "b.npy"]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
    with np.load(path, allow_pickle=False) as f:  # an ordinary .npz
        np.testing.assert_array_equal(f["b"], np.arange(3))
    assert os.listdir(path.parent) == ["x.npz"]  # no temporary file left behind
    with pytest.raises(ValueError, match=r"'bad'.*x\.npz|x\.npz.*'bad'"):
        save_arrays(tmp_path / "x.npz", {"ok": np.zeros(2), "bad": np.array([{}, 1], dtype=object)})
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "missing"])
def test_load_arrays_reports_damaged_files(tmp_path, damage):
    rng = np.random.default_rng(0)
    path = save_arrays(tmp_path / "data" / "processed" / "digits.npz",
                       {"train_x": rng.random((200, 16, 16)).astype(np.float32), "train_y": np.arange(200)})
    data = bytearray(path.read_bytes())
    if damage == "flip":
        mid = len(data) // 2
        data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) * 2 // 3]))
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    else:
        path.unlink()
    with pytest.raises(DataFileError) as info:
        load_arrays(path)
    message = str(info.value)
    assert "digits.npz" in message and "dvc repro preprocess@digits" in message
    assert isinstance(info.value, RuntimeError)


def test_load_arrays_crc_mismatch_is_reported(tmp_path):
    # A flipped byte inside a STORED member is only caught by the CRC check.
    path = tmp_path / "data" / "raw" / "moons.npz"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        with zf.open("points.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros((1000,)), allow_pickle=False)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=r"moons\.npz.*CRC.*dvc repro data@moons"):
        load_arrays(path)


# ---------------------------------------------------------------- stage CLIs ------------------------
def stage(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_stage_rejects_invalid_params(tmp_path):
    text = (REPO / "params.yaml").read_text()
    assert "n_samples: " in text
    broken = text.replace("noise: ", "noise: 7.5 #", 1)
    (tmp_path / "params.yaml").write_text(broken)
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())  # names the models' params sections
    for module in ("stages.data", "stages.preprocess"):
        result = stage([module, "moons"], tmp_path)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "params.yaml" in result.stderr and "data.moons.noise" in result.stderr
    assert not (tmp_path / "data").exists()


def test_stages_end_to_end_and_missing_raw(tmp_path):
    from gdl.params import dump

    (tmp_path / "params.yaml").write_text(dump(profile("smoke")))
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    result = stage(["stages.preprocess", "moons"], tmp_path)
    assert result.returncode == 1
    assert "data/raw/moons.npz" in result.stderr and "dvc repro data@moons" in result.stderr
    assert stage(["stages.data", "--help"], tmp_path).returncode == 0
    result = stage(["stages.data", "moons"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "points" in result.stdout and "(2000, 2)" in result.stdout
    result = stage(["stages.preprocess", "moons"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "train_x" in result.stdout
    assert set(load_arrays(tmp_path / "data" / "processed" / "moons.npz")) >= {"train_x", "mean", "std"}


def test_book_digits_unreachable_url(tmp_path, monkeypatch, capsys):
    from gdl.params import dump
    from stages import data as data_stage

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params = profile("book")
    (tmp_path / "params.yaml").write_text(dump(params))
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(digits, "MNIST_URL", f"http://127.0.0.1:{port}/mnist.npz")
    with pytest.raises(SystemExit) as exit_:
        data_stage.main(["digits"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "could not download" in err and f"127.0.0.1:{port}/mnist.npz" in err
    assert not (tmp_path / "data" / "raw").exists()
    downloads = tmp_path / "data" / "downloads"
    assert not downloads.exists() or not any(downloads.iterdir())  # no partial download left


def test_save_arrays_keeps_zero_dimensional_arrays(tmp_path):
    from gdl.arrays import load_arrays, save_arrays

    save_arrays(tmp_path / "s.npz", {"step": np.asarray(np.int64(7)), "v": np.arange(3.0)[::2]})
    loaded = load_arrays(tmp_path / "s.npz")
    assert loaded["step"].shape == () and loaded["step"] == 7
    assert loaded["v"].tolist() == [0.0, 2.0]
