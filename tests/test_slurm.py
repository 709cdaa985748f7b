"""One stage of dvc.yaml as a job on a real one-node Slurm cluster, through `snakemake --executor slurm`.

The cluster is started by scripts/slurm_cluster.sh (Debian slurm-wlm + munge; needs root and apt).
Afterwards `dvc commit` records the job's output in dvc.lock and `dvc status` is clean for that stage.
"""

import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, run

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0 or not (shutil.which("sbatch") or shutil.which("apt-get")):
        pytest.skip("the local Slurm cluster needs root and apt-get (or an installed slurm-wlm)")
    proc = subprocess.run(["bash", str(ROOT / "scripts/slurm_cluster.sh"), "start"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return True


def test_one_stage_runs_as_a_slurm_job_and_dvc_records_it(cluster, smoke_repo):
    out = run(smoke_repo, "snakemake", "--profile", "workflow/profiles/slurm", "data__moons", timeout=900)
    log = out.stdout + out.stderr
    assert "Submitted job" in log or "submitted" in log.lower(), log[-3000:]
    assert (smoke_repo / "data/raw/moons.npz").is_file()
    assert list((smoke_repo / ".snakemake").rglob("*")), "snakemake ran in the workspace"
    run(smoke_repo, "dvc", "commit", "--force", "data@moons")
    status = run(smoke_repo, "dvc", "status", "data@moons").stdout
    assert "up to date" in status, status
    assert "data@moons" in (smoke_repo / "dvc.lock").read_text()
