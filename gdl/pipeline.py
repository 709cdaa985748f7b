"""The pipeline as data: dvc.yaml's stages expanded by DVC itself, for the Snakefile and the tests."""

from __future__ import annotations

from pathlib import Path


def rule_name(stage: str) -> str:
    return stage.replace("@", "__")


def dvc_stages(root: str | Path = ".") -> list[dict]:
    """Every stage of dvc.yaml: name, cmd, file deps, outs (dirs flagged) and tracked params' values."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    stages = []
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None):
                continue  # .dvc files of imported data have no command
            deps, params = [], {}
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency):
                    params.update(dep.read_params() or {})
                else:
                    deps.append(dep.def_path)
            outs = [out.def_path for out in stage.outs]
            stages.append({
                "name": stage.addressing,
                "cmd": stage.cmd,
                "deps": list(dict.fromkeys(deps)),  # a dep may be listed twice via vars; once is enough
                "outs": outs,
                # Directory outputs have no suffix by the convention of this repo (models/<family>).
                "dirs": {o: Path(o).suffix == "" for o in outs},
                "params": params,
            })
    return stages


def _inside(path: str, parent: str) -> bool:
    return path.startswith(parent.rstrip("/") + "/")


def snakemake_inputs(stage: dict, stages: list[dict]) -> list[str]:
    """`stage`'s deps as Snakemake must see them: by the exact path of an upstream output.

    DVC links a dep to an output that is the same path, inside it, or contains it (`metrics` -> every
    metrics/*.json); Snakemake only matches exact paths (or a `directory()` output itself).
    """
    outs = [o for s in stages if s["name"] != stage["name"] for o in s["outs"]]
    inputs = []
    for dep in stage["deps"]:
        containing = [o for o in outs if _inside(dep, o)]
        contained = [o for o in outs if _inside(o, dep)]
        inputs += containing or contained or [dep]
    return list(dict.fromkeys(inputs))


def edges(stages: list[dict]) -> set[tuple[str, str]]:
    """(upstream, downstream) pairs: a dep equal to, inside, or containing an upstream output (as DVC links)."""
    producers = {out: s["name"] for s in stages for out in s["outs"]}
    found = set()
    for s in stages:
        for dep in s["deps"]:
            for out, name in producers.items():
                if dep == out or _inside(dep, out) or _inside(out, dep):
                    found.add((name, s["name"]))
    return found


def resources_for(stage: str, table: dict) -> dict:
    """Resources of one stage: default, then its group (`train`), then the stage itself (`train@vae`)."""
    group = stage.split("@")[0]
    return {**table.get("default", {}), **(table.get(group) or {}), **(table.get(stage) or {})}
