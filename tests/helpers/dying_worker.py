"""Run as two plain processes by test_distributed.py: rank 1 dies before the health check, rank 0 reports it.

Not under torchrun, whose agent would kill rank 0 as soon as rank 1 exits.
"""

import os
import sys
import time
from pathlib import Path

from evalrunner.distributed import check_all_healthy, init_ranks

if __name__ == "__main__":
    ranks = init_ranks(float(sys.argv[2]))
    if ranks.rank == 1:
        os._exit(3)
    time.sleep(1.0)  # rank 1's sockets are closed by now: gloo sees "Connection closed by peer", not a timeout
    try:
        check_all_healthy(ranks, None)
        message = "healthy"
    except RuntimeError as e:
        message = str(e)
    Path(sys.argv[1]).write_text(message)
    os._exit(0)
