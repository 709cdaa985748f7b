"""Stages of dvc.yaml as jobs on a real one-node Slurm cluster, through `snakemake --executor slurm`.

The cluster is started by scripts/slurm_cluster.sh (Debian slurm-wlm + munge; needs root and apt, or an
installed slurm-wlm); where it cannot start, the test is skipped with the script's error. After a params
change, exactly the stages DVC finds stale are submitted, and each job records its results in dvc.lock
(`dvc commit` inside the job), so `dvc status` is clean afterwards with no step by hand.
"""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, run
from tests.test_snakemake_dvc import CHAIN, dvc_stale, scheduled, set_param, snakemake

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (scripts/slurm_cluster.sh installs and starts it)")
    if not (shutil.which("sbatch") or shutil.which("apt-get")):
        pytest.skip("the local Slurm cluster needs apt-get (or an installed slurm-wlm)")
    try:
        proc = subprocess.run(["bash", str(ROOT / "scripts/slurm_cluster.sh"), "start"], capture_output=True,
                              text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("scripts/slurm_cluster.sh start did not finish in 600 s")
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "ERROR" in line or line.startswith("E:")]
        pytest.skip("the local Slurm cluster could not start: "
                    + " | ".join(errors or proc.stderr.strip().splitlines()[-3:] or ["(no message)"]))
    return True


def submitted(log: str) -> set[str]:
    """The rules Snakemake submitted as Slurm jobs (its log names each job's rule_<rule> log folder)."""
    return set(re.findall(r"has been submitted with SLURM jobid \d+ \(log: \S*/rule_(\w+)/", log))


def test_slurm_runs_exactly_the_stale_stages_and_dvc_lock_records_them(cluster, smoke_repo):
    run(smoke_repo, "dvc", "repro", *CHAIN)
    before = dvc_stale(smoke_repo)
    target = CHAIN[-1].replace("@", "__")
    assert scheduled(snakemake(smoke_repo, "slurm", "-n", target)) == set()

    set_param(smoke_repo, "data.moons.noise", 0.07)  # tracked by data@moons only
    assert dvc_stale(smoke_repo) - before == {"data@moons"}
    log = snakemake(smoke_repo, "slurm", target)
    # data@moons, which DVC lists, and the stage downstream of it: as Slurm jobs, nothing else
    assert submitted(log) == {"data__moons", "preprocess__moons"}, log[-3000:]

    assert dvc_stale(smoke_repo) == before  # no `dvc commit` by hand
    assert "noise: 0.07" in (smoke_repo / "dvc.lock").read_text()
    assert scheduled(snakemake(smoke_repo, "slurm", "-n", target)) == set()
