"""Snakemake view of dvc.yaml: one rule per DVC stage, built by DVC's own parser.

dvc.yaml stays the single source of truth (foreach/vars are expanded exactly as `dvc repro` does).
Rule names are stage names with "@" -> "__" (Snakemake rule names are identifiers):

    snakemake --profile workflow/profiles/local train__vae          # one stage (and what it needs)
    snakemake --profile workflow/profiles/slurm train__vae          # the same, as Slurm jobs
    dvc commit -f train@vae                                          # record the result in dvc.lock

Resources per stage: workflow/resources.yaml. Params are validated before any job is scheduled.
"""

import json
from pathlib import Path

import yaml

from gdl.params import ParamsError, load_params
from gdl.pipeline import dvc_stages, resources_for, rule_name, snakemake_inputs

try:
    load_params()
except ParamsError as exc:
    raise WorkflowError(str(exc)) from None

STAGES = dvc_stages()
RESOURCES = yaml.safe_load(Path("workflow/resources.yaml").read_text())


def _outputs(stage):
    return [directory(p) if stage["dirs"].get(p) else p for p in stage["outs"]]


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
            snakemake_inputs(stage, STAGES),
        output:
            _outputs(stage),
        params:
            # The tracked params' values: Snakemake's "params" rerun trigger sees a change in them.
            dvc_params=json.dumps(stage["params"], sort_keys=True),
            cmd=stage["cmd"],
        threads: res.get("cpus_per_task", 1)
        resources:
            **{k: v for k, v in res.items() if k != "cpus_per_task"},
            cpus_per_task=res.get("cpus_per_task", 1),
        shell:
            "{params.cmd}"
