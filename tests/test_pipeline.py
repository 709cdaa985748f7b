"""dvc.yaml is the one source of truth: the Snakefile's rules and edges are exactly its stages and edges."""

import re
import sys

import yaml

from gdl.pipeline import dvc_stages, edges, resources_for, rule_name
from tests.conftest import ROOT, run


def dvc_graph():
    dot = run(ROOT, "dvc", "dag", "--dot").stdout
    nodes = set(re.findall(r'^\s*"?([\w@.-]+)"?;?\s*$', dot, re.M)) | set(re.findall(r'"([\w@.-]+)"', dot))
    pairs = set(re.findall(r'"?([\w@.-]+)"?\s*->\s*"?([\w@.-]+)"?', dot))
    return {rule_name(n) for n in nodes}, {(rule_name(a), rule_name(b)) for a, b in pairs}


def snakemake_graph():
    dot = run(ROOT, sys.executable, "-m", "snakemake", "--dag", "--forceall", "--quiet", "all").stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', dot, re.M))
    pairs = {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)}
    return set(labels.values()) - {"all"}, {(a, b) for a, b in pairs if "all" not in (a, b)}


def test_snakemake_has_the_same_stages_and_edges_as_dvc():
    dvc_nodes, dvc_edges = dvc_graph()
    smk_nodes, smk_edges = snakemake_graph()
    assert len(dvc_nodes) >= 20
    assert smk_nodes == dvc_nodes
    assert smk_edges == dvc_edges


def test_pipeline_edges_match_dvc():
    _, dvc_edges = dvc_graph()
    ours = {(rule_name(a), rule_name(b)) for a, b in edges(dvc_stages(ROOT))}
    assert ours == dvc_edges


def test_every_family_stage_chain_exists():
    names = {s["name"] for s in dvc_stages(ROOT)}
    for family in ("vae", "realnvp"):
        assert {f"train@{family}", f"sample@{family}", f"evaluate@{family}", f"report@{family}"} <= names
    for dataset in ("digits", "moons", "shapes", "text", "chorales"):
        assert {f"data@{dataset}", f"preprocess@{dataset}"} <= names


def test_resources_most_specific_entry_wins():
    table = yaml.safe_load((ROOT / "workflow/resources.yaml").read_text())
    assert resources_for("train@vae", {"default": {"mem_mb": 1, "runtime": 5}, "train": {"mem_mb": 2},
                                       "train@vae": {"gpu": 1}}) == {"mem_mb": 2, "runtime": 5, "gpu": 1}
    for stage in dvc_stages(ROOT):
        res = resources_for(stage["name"], table)
        assert {"cpus_per_task", "mem_mb", "runtime"} <= res.keys()
