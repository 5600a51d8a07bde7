"""`--devices N`: run the same command in N processes under torchrun, and report like one process.

torchrun ends every process when one fails, so a failure cannot leave the others waiting. What
it prints around that (its warnings, each process's traceback, its failure report) is replaced
by one line naming the process and its error; every process's own `error:` line is shown once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import torch

# torchrun's log lines (glog style), its banner and its thread advice; each worker's traceback
TORCHRUN_NOISE = re.compile(r"^([WEI]\d{4} |\*{5}|Setting OMP_NUM_THREADS|\[rank\d+\]:)")
RANK_ERROR = re.compile(r"^(?:\[rank(\d+)\]: )?([\w.]*(?:Error|Exception)\b.*)$")


def launch(devices: int, argv: list[str]) -> int:
    """Run `llada argv` in `devices` processes on this machine; returns the exit code."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}"]
    # each process gets this one's thread count (torchrun would otherwise set 1 and say so)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads()))}
    process = subprocess.Popen(
        [*torchrun, "-m", "llada_cli", *argv], stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stderr is not None
    shown_errors: set[str] = set()
    failure = None
    in_traceback = False
    for line in process.stderr:
        if line.startswith("error: "):  # a process's own one-line error (every process has it)
            if line not in shown_errors:
                shown_errors.add(line)
                sys.stderr.write(line)
            continue
        found = RANK_ERROR.match(line.rstrip("\n"))
        if found and failure is None and (found.group(1) is not None or in_traceback):
            failure = f"process {found.group(1) or '?'}: {found.group(2).split('. ')[0]}"  # first sentence
        if line.startswith("Traceback"):
            in_traceback = True
        if line.strip() and not (in_traceback or TORCHRUN_NOISE.match(line)):
            sys.stderr.write(line)
    code = process.wait()
    if code and not shown_errors:
        sys.stderr.write(f"error: training failed in {failure or 'one of the processes'}\n")
    return code
