"""Snakemake view of dvc.yaml: one rule per DVC stage, built by DVC's own parser.

dvc.yaml stays the single source of truth (foreach/vars are expanded exactly as `dvc repro` does).
Rule names are stage names with "@" -> "__" (Snakemake rule names are identifiers):

    snakemake --profile workflow/profiles/local train__vae          # one stage (and what it needs)
    snakemake --profile workflow/profiles/slurm train__vae          # the same, as Slurm jobs
    snakemake --profile workflow/profiles/local -n                  # what would run (target `all`)

DVC decides what is stale, not Snakemake: before scheduling, the main process asks DVC (`dvc status`,
plus everything downstream of what it lists; a frozen stage never) and a rule runs only when its stage
is stale there (or an output is missing), whatever the files' dates. So after a params or code change a
run reruns what `dvc repro <target>` would, and with `dvc status` clean nothing runs. How: every rule
has one more input, `.snakemake/dvc-stale/<rule>`, dated now for a stale stage and 1970 otherwise; a
fresh stage's real inputs are `ancient()` (dates never trigger); and the profiles make dates the only
rerun trigger (`rerun-triggers: [mtime]`: Snakemake's params/input/code records know nothing of what
`dvc repro` wrote), so run with one of them. `-R <rule>` still forces that rule alone; a next run then
picks up what DVC finds stale downstream of it.

Each job ends with `dvc --wait-for-lock commit --force <stage>`: dvc.lock records its results as soon as
it succeeds (concurrent jobs queue on DVC's lock), so `dvc status` is clean afterwards, with no
`dvc commit` by hand; `dvc push` then versions the outputs. A frozen stage's rule never runs its command
(neither does `dvc repro`): it only checks that the outputs are there.

Resources per stage: workflow/resources.yaml. Params are validated before any job is scheduled.
"""

import json
import shlex
from pathlib import Path

import yaml

from gdl.params import ParamsError, load_params
from gdl.pipeline import (dvc_stages, mark_stale, resources_for, rule_name, sentinel, snakemake_inputs,
                          stale_stages)

PIPELINE = Path(".snakemake/dvc-pipeline.json")

if workflow.is_main_process:
    try:
        load_params()
    except ParamsError as exc:
        raise WorkflowError(str(exc)) from None
    STAGES = dvc_stages()
    STALE = stale_stages()
    mark_stale(STAGES, STALE)
    if not workflow.dryrun:
        PIPELINE.write_text(json.dumps(STAGES))  # for the jobs (below)
else:
    # A job re-reading this file (a Slurm job): the main process has asked DVC already, and jobs that
    # are committing rewrite dvc.lock meanwhile. Spawned jobs are forced, so staleness plays no part.
    STAGES = json.loads(PIPELINE.read_text())
    STALE = {}
RESOURCES = yaml.safe_load(Path("workflow/resources.yaml").read_text())


def _inputs(stage):
    real = snakemake_inputs(stage, STAGES)
    if stage["name"] not in STALE:
        # Dates never make a fresh stage stale. (Downstream of a stale stage is stale too, so its inputs
        # stay plain and Snakemake's "input updated by another job" still reaches it.)
        real = [ancient(p) for p in real]
    return [*real, sentinel(stage["name"])]


def _outputs(stage):
    outs = [directory(p) if stage["dirs"].get(p) else p for p in stage["outs"]]
    # Snakemake deletes a job's outputs before running it, except update() ones: keep a frozen stage's.
    return [update(p) for p in outs] if stage["frozen"] else outs


def _shell(stage):
    if stage["frozen"]:
        # Like `dvc repro`: a frozen stage's command never runs, its outputs are only checked. Snakemake
        # schedules this check only when an upstream output is missing (or when forced).
        outs = " ".join(shlex.quote(o) for o in stage["outs"])
        why = (f"{stage['name']} is frozen in dvc.yaml: its command never runs here (nor under dvc repro)"
               " and an output is missing: restore it with git, or retrain on purpose as dvc.yaml says")
        return f"for out in {outs}; do test -e \"$out\" || {{ echo {shlex.quote(why)} >&2; exit 1; }}; done"
    return f"{stage['cmd']}\ndvc --quiet --wait-for-lock commit --force {shlex.quote(stage['name'])}"



rule all:
    default_target: True
    input:
        [out for stage in STAGES for out in stage["outs"]],


for stage in STAGES:
    res = resources_for(stage["name"], RESOURCES)

    rule:
        name:
            rule_name(stage["name"])
        input:
            _inputs(stage),
        output:
            _outputs(stage),
        params:
            # `shell:` would read `stage` when the job runs (the last stage by then); params bind it now.
            cmd=_shell(stage),
        localrule: stage["frozen"]  # a check of files, no job to submit
        threads: res.get("cpus_per_task", 1)
        resources:
            **{k: v for k, v in res.items() if k != "cpus_per_task"},
            cpus_per_task=res.get("cpus_per_task", 1),
        shell:
            "{params.cmd}"
