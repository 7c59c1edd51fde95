"""Processes of a torchrun that leave at different times (rank 1 done while rank 0 still works) all exit cleanly."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

JOB = textwrap.dedent("""
    import time
    import torch
    import torch.distributed as dist
    from prodlens.distributed import setup_distributed

    rank, world = setup_distributed()
    for step in range(20):  # the collectives a data-parallel epoch makes: gathered rows, an all-reduce
        gathered = [torch.empty(2, dtype=torch.long) for _ in range(world)]
        dist.all_gather(gathered, torch.tensor([rank, step]))
        dist.all_reduce(torch.ones(1000))
    if rank == 0:
        time.sleep(0.3)  # rank 0 evaluates and writes after training; the others have returned
    print("done", rank, flush=True)
""")


@pytest.mark.slow  # six two-process torchrun starts: the slow tier's kind of test (multi-process)
@pytest.mark.parametrize("attempt", range(6))  # without the teardown about half of such runs aborted
def test_a_process_that_finishes_first_exits_cleanly(tmp_path, attempt):
    job = tmp_path / "job.py"
    job.write_text(JOB)
    proc = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(job)],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(line for line in proc.stdout.splitlines() if line.startswith("done")) == ["done 0", "done 1"]
