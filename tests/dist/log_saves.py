"""Runs `python -m MODULE ARGS` (an example job) with each ember.save call logged as a line "RANK PATH" to the
file $EMBER_SAVE_LOG (RANK: ember.distributed's, 0 without a process group), so that a test can tell which
ranks wrote which files. Usage: log_saves.py MODULE ARGS..."""
import os
import runpy
import sys

import ember
import ember.distributed as dist

_save = ember.save


def save(obj, f, *args, **kwargs):
    with open(os.environ["EMBER_SAVE_LOG"], "a") as log:
        log.write(f"{dist.get_rank() if dist.is_initialized() else 0} {f}\n")
    return _save(obj, f, *args, **kwargs)


ember.save = save
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
