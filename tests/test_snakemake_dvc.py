"""Snakemake reruns exactly what DVC finds stale, and dvc.lock records each job's results by itself.

The Snakefile asks DVC (`gdl.pipeline.stale_stages`) and passes the answer on as sentinel inputs; these
tests check that answer on a toy DVC repo (fast), then the whole loop on the smoke profile (slow):
params change -> `dvc status` lists a stage -> Snakemake runs it and its downstream, nothing else ->
`dvc status` is clean again without a manual `dvc commit`. tests/test_slurm.py does the same on Slurm.
"""

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

from gdl.pipeline import mark_stale, sentinel, stale_stages
from tests.conftest import ROOT, run

CHAIN = ["data@moons", "preprocess@moons"]  # a small chain of dvc.yaml: seconds on the smoke profile


def dvc_stale(repo: Path) -> set[str]:
    """The stages `dvc status` lists."""
    return set(json.loads(run(repo, "dvc", "status", "--json").stdout or "{}"))


def scheduled(log: str) -> set[str]:
    """The rules a Snakemake (dry) run lists as jobs, `all` aside."""
    return set(re.findall(r"^(?:local)?rule (\w+):", log, re.MULTILINE)) - {"all"}


def snakemake(repo: Path, profile: str, *args: str) -> str:
    out = run(repo, sys.executable, "-m", "snakemake", "--profile", f"workflow/profiles/{profile}", *args)
    return out.stdout + out.stderr


def set_param(repo: Path, dotted: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *path, key = dotted.split(".")
    section = params
    for part in path:
        section = section[part]
    assert section[key] != value, f"{dotted} is {value} already"
    section[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_snakemake_timestamp_is_dvcignored():
    # Snakemake writes it into every directory() output (models/<model>): it must not change the DVC hash.
    out = run(ROOT, "dvc", "check-ignore", "models/vae/.snakemake_timestamp")
    assert ".snakemake_timestamp" in out.stdout


@pytest.fixture
def toy_repo(tmp_path, monkeypatch):
    """a -> b, and a -> f (frozen) -> g; every stage committed, so `dvc status` starts clean."""
    monkeypatch.chdir(tmp_path)
    run(tmp_path, "dvc", "init", "--no-scm", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "a": {"cmd": "echo a > a.txt", "params": ["a"], "outs": ["a.txt"]},
        "b": {"cmd": "cat a.txt > b.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
        "f": {"cmd": "cat a.txt > f.txt", "deps": ["a.txt"], "outs": ["f.txt"], "frozen": True},
        "g": {"cmd": "cat f.txt > g.txt", "deps": ["f.txt"], "outs": ["g.txt"]},
    }}))
    for name in "abfg":
        (tmp_path / f"{name}.txt").write_text(name)
    run(tmp_path, "dvc", "commit", "--force", "-q")
    return tmp_path


def test_stale_is_what_dvc_status_lists_and_downstream_but_never_frozen(toy_repo):
    assert stale_stages(toy_repo) == {}
    (toy_repo / "params.yaml").write_text("a: 2\n")
    stale = stale_stages(toy_repo)
    # a's param changed; b is downstream; f is frozen, and g is downstream of a only through f
    assert set(stale) == {"a", "b"}
    assert stale["b"] == ["downstream of a"]
    (toy_repo / "f.txt").write_text("retrained")  # a frozen stage's new output: what follows is stale
    assert set(stale_stages(toy_repo)) == {"a", "b", "g"}


def test_sentinels_are_dated_now_when_stale_and_1970_otherwise(toy_repo):
    stages = [{"name": n} for n in "ab"]
    mark_stale(stages, {"a": ["changed"]})
    first = Path(sentinel("a")).read_text()
    assert Path(sentinel("a")).stat().st_mtime > time.time() - 60
    assert Path(sentinel("b")).stat().st_mtime == 0
    mark_stale(stages, {"a": ["changed"]})
    # new content each time: Snakemake ignores a newer input whose checksum it has recorded
    assert Path(sentinel("a")).read_text() != first
    mark_stale(stages, {})
    assert Path(sentinel("a")).stat().st_mtime == 0


@pytest.mark.slow
def test_snakemake_reruns_exactly_the_stale_stages_and_records_them(smoke_repo):
    run(smoke_repo, "dvc", "repro", *CHAIN)
    before = dvc_stale(smoke_repo)
    assert not before & set(CHAIN)
    target = CHAIN[-1].replace("@", "__")

    # Clean in DVC's eyes: nothing to do, whatever the dates (DVC restores files with new ones).
    os.utime(smoke_repo / "data/raw/moons.npz")
    marker = time.time()
    time.sleep(0.05)
    assert scheduled(snakemake(smoke_repo, "local", "-n", target)) == set()

    # A param only the last stage tracks: that stage alone, although its input is newer than its output.
    set_param(smoke_repo, "preprocess.moons.val_fraction", 0.2)
    assert dvc_stale(smoke_repo) - before == {"preprocess@moons"}
    assert scheduled(snakemake(smoke_repo, "local", "-n", target)) == {"preprocess__moons"}
    changed = {str(p.relative_to(smoke_repo)) for p in smoke_repo.rglob("*")
               if p.is_file() and p.stat().st_mtime > marker and ".git" not in p.parts}
    assert {p for p in changed if not p.startswith((".snakemake/", ".dvc/tmp/"))} == {"params.yaml"}, changed

    log = snakemake(smoke_repo, "local", target)
    assert scheduled(log) == {"preprocess__moons"}, log[-3000:]
    assert dvc_stale(smoke_repo) == before  # dvc.lock recorded it: no `dvc commit` by hand

    # A param of the first stage: it and what follows it.
    set_param(smoke_repo, "data.moons.noise", 0.07)
    assert dvc_stale(smoke_repo) - before == {"data@moons"}
    log = snakemake(smoke_repo, "local", target)
    assert scheduled(log) == {"data__moons", "preprocess__moons"}, log[-3000:]
    assert dvc_stale(smoke_repo) == before
    assert scheduled(snakemake(smoke_repo, "local", "-n", target)) == set()
