"""Noise of the figures: which metric changes are beyond noise (scripts/metrics_diff.py) and the spread
across training seeds (scripts/seeds.py). Pure functions here; one end-to-end run (slow) at the end."""

import importlib.util
import json
import math
import sys

import pytest

from tests.conftest import BIN, ROOT, git, run


def load(name):
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


md = load("metrics_diff")
seeds = load("seeds")

OLD = {"fid": 10.0, "fid_std": 0.5, "kid": 1.0, "kid_std": 0.1, "bits_per_dim": 5.30,
       "baseline": {"fid": 75.0, "fid_std": 2.0, "bits_per_dim": 5.56}}
BACKBONE = {"name": "domain", "path": "backbones/digits.weights.h5", "sha256": "a" * 64}


def diff_entry(old: dict, new: dict) -> dict:
    """What `dvc metrics diff --json` gives for one file: the keys whose value changed."""
    a, b = md.flatten(old), md.flatten(new)
    return {k: {"old": a.get(k), "new": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def rows_by_key(old, new, seeds_doc=None, rulers_differ=False):
    rows = md.compare("metrics/vae.json", diff_entry(old, new), old, new, seeds_doc, rulers_differ)
    return {r["key"]: r for r in rows}


def test_a_change_beyond_twice_the_combined_std_is_beyond_noise():
    new = {**OLD, "fid": 12.0, "kid": 1.2}  # noise of fid: hypot(0.5, 0.5) = 0.707; 2 > 1.414
    rows = rows_by_key(OLD, new)
    assert rows["fid"]["noise"] == pytest.approx(math.hypot(0.5, 0.5))
    assert rows["fid"]["mark"] == md.BEYOND and rows["fid"]["change"] == pytest.approx(2.0)
    assert rows["kid"]["mark"] == md.WITHIN  # 0.2 <= 2 x 0.141
    assert rows["fid"]["source"] == "sampling std"


def test_the_std_of_both_revisions_counts():
    new = {**OLD, "fid": 11.0, "fid_std": 2.0}  # hypot(0.5, 2) = 2.06: a change of 1 is within
    assert rows_by_key(OLD, new)["fid"]["mark"] == md.WITHIN
    assert rows_by_key(OLD, new)["fid"]["noise"] == pytest.approx(math.hypot(0.5, 2.0))


def test_one_sided_std_is_taken_for_both_sides():
    old = {k: v for k, v in OLD.items() if k != "fid_std"}  # an older metrics file without fid_std
    row = rows_by_key(old, {**OLD, "fid": 12.0})["fid"]
    assert row["noise"] == pytest.approx(math.sqrt(2) * 0.5) and row["source"] == "sampling std (one side)"
    assert row["mark"] == md.BEYOND  # 2 > 2 x 0.707


def test_no_std_and_no_seed_spread_is_noise_unknown():
    row = rows_by_key(OLD, {**OLD, "bits_per_dim": 5.0})["bits_per_dim"]
    assert row["mark"] == md.UNKNOWN and row["noise"] is None and row["change"] == pytest.approx(-0.3)


def test_the_seed_spread_gives_the_noise_where_it_is_larger():
    spread = {"figures": {"fid": {"mean": 11, "std": 1.5, "values": [10, 11, 13]},
                          "bits_per_dim": {"mean": 5.3, "std": 0.05, "values": [5.25, 5.3, 5.35]}}}
    rows = rows_by_key(OLD, {**OLD, "fid": 13.0, "bits_per_dim": 5.0}, spread)
    # fid: sqrt(2) x 1.5 = 2.12 > 0.707 from the bootstrap; a change of 3 is within 2 x 2.12
    assert rows["fid"]["noise"] == pytest.approx(math.sqrt(2) * 1.5)
    assert rows["fid"]["mark"] == md.WITHIN and rows["fid"]["source"] == "seed spread (K=3)"
    # bits_per_dim has no bootstrap std: the seed spread alone; -0.3 is beyond 2 x 0.0707
    assert rows["bits_per_dim"]["mark"] == md.BEYOND


def test_the_sampling_std_is_a_floor_under_a_small_seed_spread():
    spread = {"figures": {"fid": {"mean": 10, "std": 0.01, "values": [10, 10.01]}}}
    row = rows_by_key(OLD, {**OLD, "fid": 11.0}, spread)["fid"]
    assert row["noise"] == pytest.approx(math.hypot(0.5, 0.5)) and row["source"] == "sampling std"
    assert row["mark"] == md.WITHIN


def test_nested_figures_use_their_own_std():
    row = rows_by_key(OLD, {**OLD, "baseline": {**OLD["baseline"], "fid": 80.0}})["baseline.fid"]
    # baseline.fid's noise comes from baseline.fid_std (2.0 on both sides), not fid_std (0.5): 5 <= 2 x 2.83
    assert row["noise"] == pytest.approx(math.hypot(2.0, 2.0)) and row["mark"] == md.WITHIN


def test_std_keys_names_and_one_sided_figures():
    new = {**OLD, "fid_std": 0.7, "name": "vae", "iwae": 4.0}
    old = {**OLD, "name": "vae-old", "elbo": 5.0}
    rows = rows_by_key(old, new)
    assert "fid_std" not in rows and "name" not in rows  # stds are noise, names are not figures
    assert rows["iwae"]["mark"] == md.ADDED and rows["elbo"]["mark"] == md.REMOVED


def test_a_backbone_sha_mismatch_is_reported_and_its_figures_not_compared():
    other = {**BACKBONE, "sha256": "b" * 64}
    differ, message = md.backbone_problem({"backbone": BACKBONE}, {"backbone": other})
    assert differ and "BACKBONE CHANGED" in message and "a" * 64 in message and "b" * 64 in message
    new = {**OLD, "fid": 30.0, "baseline": {**OLD["baseline"], "fid": 90.0}, "bits_per_dim": 5.0}
    rows = rows_by_key(OLD, new, rulers_differ=True)
    assert rows["fid"]["mark"] == rows["baseline.fid"]["mark"] == md.NOT_COMPARABLE
    assert rows["bits_per_dim"]["mark"] == md.UNKNOWN  # a likelihood needs no ruler


def test_the_same_backbone_or_an_unknown_one():
    assert md.backbone_problem({"backbone": BACKBONE}, {"backbone": dict(BACKBONE)}) == (False, None)
    assert md.backbone_problem(None, None) == (False, None)
    differ, message = md.backbone_problem(None, {"backbone": BACKBONE})
    assert not differ and "cannot check" in message
    assert md.backbone_problem({"backbone": BACKBONE}, {"backbone": {**BACKBONE, "name": "inception_v3"}})[0]


def test_main_warns_loudly_and_exits_0(monkeypatch, capsys):
    new = {**OLD, "fid": 30.0}
    files = {("REV", "metrics/vae.json"): OLD, (None, "metrics/vae.json"): new,
             ("REV", "metrics/vae.meta.json"): {"backbone": BACKBONE},
             (None, "metrics/vae.meta.json"): {"backbone": {**BACKBONE, "sha256": "c" * 64}}}
    monkeypatch.setattr(md, "dvc_metrics_diff", lambda rev: {"metrics/vae.json": diff_entry(OLD, new)})
    monkeypatch.setattr(md, "read_json_at", lambda rev, path: files.get((rev, path)))
    assert md.main(["REV"]) == 0
    out = capsys.readouterr().out
    assert "WARNING metrics/vae.json: BACKBONE CHANGED" in out and "not comparable" in out
    assert md.main(["REV", "--md"]) == 0
    assert "| metrics/vae.json | fid " in capsys.readouterr().out


# ---------------------------------------------------------------- seeds ---------------------------------
RUNS = [(42, {"fid": 10.0, "fid_std": 0.5, "seed": 42, "baseline": {"fid": 75.0, "name": "marginals"}}),
        (1, {"fid": 12.0, "fid_std": 0.6, "seed": 1, "baseline": {"fid": 75.0, "name": "marginals"}}),
        (2, {"fid": 14.0, "fid_std": 0.4, "seed": 2, "baseline": {"fid": 75.0}, "extra": 1.0})]


def test_aggregate_gives_mean_sample_std_and_values_per_dotted_figure():
    figures = seeds.aggregate(RUNS)
    assert figures["fid"] == {"mean": 12.0, "std": pytest.approx(2.0), "values": [10.0, 12.0, 14.0]}  # ddof=1
    assert figures["baseline.fid"] == {"mean": 75.0, "std": 0.0, "values": [75.0] * 3}
    assert figures["fid_std"]["mean"] == pytest.approx(0.5)
    assert "seed" not in figures and "baseline.name" not in figures  # bookkeeping and names
    assert "extra" not in figures  # only in one run


def test_a_single_run_has_no_std_and_the_document_names_the_committed_seed():
    assert seeds.aggregate(RUNS[:1])["fid"] == {"mean": 10.0, "std": None, "values": [10.0]}
    doc = seeds.spread_document("vae", RUNS, 42)
    assert doc["model"] == "vae" and doc["seeds"] == [42, 1, 2] and doc["committed_seed"] == 42
    assert json.loads(json.dumps(doc)) == doc
    assert "seed 42 (committed)" in seeds.table(doc)
    # what metrics_diff reads from it
    assert md.seed_std("fid", doc) == (pytest.approx(2.0), 3)


def test_plan_skips_the_committed_seed_and_repeats():
    assert seeds.plan([1, 42, 2, 1], 42) == [1, 2]
    assert seeds.plan([1, 42], None) == [1, 42]


def test_find_experiment_in_exp_show_json():
    exp = {"rev": "abc", "name": "seeds-vae-1-x",
           "data": {"params": {"params.yaml": {"data": {"vae": {"seed": 1}}}},
                    "metrics": {"metrics/vae.json": {"data": {"fid": 9.0}}}}}
    show = [{"rev": "workspace", "name": None, "data": {}},
            {"rev": "base", "name": "main", "data": {}, "experiments": [{"revs": [exp]}]}]
    entry = seeds.find_experiment(show, "seeds-vae-1-x")
    assert entry is exp and seeds.find_experiment(show, "other") is None
    assert seeds.metrics_of(entry, "metrics/vae.json") == {"fid": 9.0} and seeds.param_of(entry, "vae") == 1


def test_the_scripts_explain_themselves():
    for script in ("seeds", "metrics_diff"):
        out = run(ROOT, sys.executable, f"scripts/{script}.py", "--help").stdout
        assert "usage:" in out and len(out) > 1000


# ---------------------------------------------------------------- end to end (slow) ---------------------
@pytest.mark.slow
def test_seeds_then_diff_end_to_end(smoke_repo):
    """realnvp only (report stages are left out): repro, 1 extra seed as a DVC experiment, then the diff.

    80-110 s on the 2-core reference machine (repro ~50 s, one experiment ~25 s)."""
    repo = smoke_repo
    run(repo, "dvc", "repro", "evaluate@realnvp")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "realnvp on the smoke profile")
    committed = (repo / "metrics/realnvp.json").read_text()
    make = ["make", "-s", "BIN=" + str(BIN), "STAMP="]

    out = run(repo, *make, "seeds", "MODEL=realnvp", "SEEDS=42 7").stdout
    assert "the committed run (seed 42" in out and "seed 42 is the committed run's: not run again" in out
    doc = json.loads((repo / "metrics/seeds/realnvp.json").read_text())
    assert doc["seeds"] == [42, 7] and doc["committed_seed"] == 42
    nll = doc["figures"]["nll_nats"]
    assert nll["values"][0] == json.loads(committed)["nll_nats"] and nll["std"] > 0
    assert doc["figures"]["baseline.nll_nats"]["std"] == 0.0  # the baseline does not depend on the seed
    assert (repo / "metrics/realnvp.json").read_text() == committed, "the workspace is left alone"
    assert git(repo, "for-each-ref", "refs/exps").strip() == "", "the experiments are removed"
    assert "up to date" in run(repo, "dvc", "status", "evaluate@realnvp").stdout

    out = run(repo, *make, "diff", "REV=HEAD~1").stdout  # the copy's own metrics -> the smoke run's
    line = next(l for l in out.splitlines() if "metrics/realnvp.json" in l and " nll_nats " in l)
    assert "seed spread (K=2)" in line and ("beyond noise" in line or "within noise" in line)
