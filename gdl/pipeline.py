"""The pipeline as data: dvc.yaml's stages expanded by DVC itself, for the Snakefile and the tests.

Also what keeps Snakemake and DVC agreeing on what is stale: DVC decides (`stale_stages`), and the
Snakefile hands its answer to Snakemake as one sentinel input per rule (`mark_stale`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

# One file per stage, an input of its rule: dated now when DVC finds the stage stale, 1970 otherwise.
SENTINELS = Path(".snakemake/dvc-stale")


def rule_name(stage: str) -> str:
    return stage.replace("@", "__")


def dvc_stages(root: str | Path = ".") -> list[dict]:
    """Every stage of dvc.yaml: name, cmd, file deps, outs (dirs flagged) and tracked params' values."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    stages = []
    # DVC names a stage relative to the working directory ("../x/dvc.yaml:train@vae" from elsewhere), so read
    # the repo from its root: names are then what `dvc repro <name>` takes there.
    with contextlib.chdir(root), Repo(".") as repo:
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
                "frozen": bool(stage.frozen),
            })
    return stages


def stale_stages(root: str | Path = ".") -> dict[str, list]:
    """The stages `dvc repro` would run, with DVC's reasons: what `dvc status` lists (a stage's own deps,
    params, outs or command changed) and everything downstream of those, since their deps will change.

    A frozen stage is never stale (DVC never runs its command), nor is a stage downstream of a stale one
    only through a frozen stage. Waits for DVC's repo lock (`dvc status` takes it) instead of failing.
    """
    from dvc.repo import Repo

    status_log = logging.getLogger("dvc.repo.status")  # "<stage> is frozen" warnings: not news here
    level = status_log.level
    status_log.setLevel(logging.ERROR)
    try:
        # Names as in dvc_stages: DVC words them relative to the working directory when they are read.
        with contextlib.chdir(root), Repo(".", _wait_for_lock=True) as repo:
            status = repo.status()
            graph = repo.index.graph  # edges run from a stage to the stages it depends on
            name = {stage: stage.addressing for stage in graph.nodes}
    finally:
        status_log.setLevel(level)
    by_name = {n: stage for stage, n in name.items()}
    stale = {n: why for n, why in status.items() if n in by_name and not by_name[n].frozen}
    queue = list(stale)
    while queue:
        upstream = queue.pop()
        for stage in graph.predecessors(by_name[upstream]):
            if not stage.frozen and name[stage] not in stale:
                stale[name[stage]] = [f"downstream of {upstream}"]
                queue.append(name[stage])
    return stale


def sentinel(stage: str) -> str:
    return str(SENTINELS / rule_name(stage))


def mark_stale(stages: list[dict], stale: dict[str, list]) -> None:
    """Date every stage's sentinel: now for a stale stage, 1970 (never newer than an output) otherwise.

    A stale stage's sentinel also gets new content: Snakemake ignores a newer input whose checksum equals
    the one it recorded when it last ran the job.
    """
    SENTINELS.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        path = Path(sentinel(stage["name"]))
        if stage["name"] in stale:
            path.write_text(json.dumps({"stale": stale[stage["name"]], "checked": time.time_ns()}) + "\n")
        else:
            if not path.exists():
                path.write_text("")
            if path.stat().st_mtime != 0:
                os.utime(path, (0, 0))


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
