"""`python -m ember.distributed.run --nproc-per-node N script.py ARGS`: torchrun's launcher for ember.

Starts N processes of `script.py ARGS` (or `-m module ARGS` with --module) on this node, each with torch's
environment: RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK (the node rank), MASTER_ADDR and
MASTER_PORT (the env:// rendezvous). With --nnodes M, run it on each of the M hosts with its --node-rank and
the same --master-addr / --master-port: global ranks are node_rank * N + local rank.

It forwards SIGINT and SIGTERM to the ranks, and when one rank exits with an error it stops the others
(SIGTERM, then SIGKILL after --stop-timeout seconds), reports which rank failed and its exit code on stderr,
and exits with that code. It exits 0 when every rank does.

The "mpi" backend takes its ranks from the MPI launcher instead: run `mpiexec -n N python script.py` (a process
started here is an MPI world of one, and init_process_group("mpi") says so against WORLD_SIZE).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time


def _args(argv):
    p = argparse.ArgumentParser(prog="python -m ember.distributed.run",
                                description="Start N ranks of a training script with torchrun's environment.")
    p.add_argument("--nproc-per-node", "--nproc_per_node", type=int, default=1, help="ranks on this node")
    p.add_argument("--nnodes", type=int, default=1, help="nodes in the job (default 1)")
    p.add_argument("--node-rank", "--node_rank", type=int, default=0, help="this node's rank in [0, nnodes)")
    p.add_argument("--master-addr", "--master_addr", default="127.0.0.1", help="rank 0's host (env:// rendezvous)")
    p.add_argument("--master-port", "--master_port", type=int, default=29500, help="rank 0's port")
    p.add_argument("--stop-timeout", type=float, default=10.0,
                   help="seconds between SIGTERM and SIGKILL when stopping the ranks (default 10)")
    p.add_argument("-m", "--module", action="store_true", help="run the script argument as a module (python -m)")
    p.add_argument("script", help="the training script (or module, with -m)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")
    a = p.parse_args(argv)
    if a.nproc_per_node < 1:
        p.error(f"--nproc-per-node must be at least 1, got {a.nproc_per_node}")
    if a.nnodes < 1 or not 0 <= a.node_rank < a.nnodes:
        p.error(f"--node-rank must be in [0, --nnodes={a.nnodes}), got {a.node_rank}")
    if not a.module and not os.path.exists(a.script):
        p.error(f"script {a.script!r} not found")
    return a


def _env(a, local: int) -> dict:
    n = a.nproc_per_node
    env = dict(os.environ)
    env.update(RANK=str(a.node_rank * n + local), LOCAL_RANK=str(local), WORLD_SIZE=str(a.nnodes * n),
               LOCAL_WORLD_SIZE=str(n), GROUP_RANK=str(a.node_rank), MASTER_ADDR=a.master_addr,
               MASTER_PORT=str(a.master_port))
    return env


def _stop(procs, grace: float) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        while p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if p.poll() is None:
            p.kill()
            p.wait()


def main(argv=None) -> int:
    a = _args(sys.argv[1:] if argv is None else argv)
    cmd = [sys.executable] + (["-m", a.script] if a.module else [a.script]) + a.script_args
    procs = [subprocess.Popen(cmd, env=_env(a, k)) for k in range(a.nproc_per_node)]
    first = a.node_rank * a.nproc_per_node

    def forward(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)
    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            codes = [p.poll() for p in procs]
            bad = [(k, c) for k, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                k, code = bad[0]
                print(f"ember.distributed.run: rank {first + k} (local rank {k}, pid {procs[k].pid}) exited with "
                      f"code {code}; stopping the other ranks", file=sys.stderr, flush=True)
                _stop(procs, a.stop_timeout)
                return code if code > 0 else 128 - code     # killed by signal s: 128 + s, as a shell reports it
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.05)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
