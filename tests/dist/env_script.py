"""A rank started by ember.distributed.run: prints its environment; `fail R C` makes rank R exit with code C
while the others wait (the launcher must stop them)."""
import os
import sys
import time

keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT")
print(" ".join(f"{k}={os.environ[k]}" for k in keys), flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "fail":
    if os.environ["RANK"] == sys.argv[2]:
        time.sleep(0.5)
        sys.exit(int(sys.argv[3]))
    time.sleep(60)
