"""Run under torchrun by test_gather.py: each rank gathers its shard and writes what it got."""

import os
import sys
from pathlib import Path

from evalrunner.distributed import gather_predictions, init_ranks

SHARDS = {
    0: ([5, 1, 3, 7], ["yes", "un café", "", "2"]),
    1: ([2, 5, 4], ['say "hi"\n', "yes", "✓"]),  # 5 repeats rank 0's item, as a padded sampler does
    2: ([], []),  # a rank whose shard is empty
}

if __name__ == "__main__":
    ranks = init_ranks(60)
    got = gather_predictions(ranks, *SHARDS[ranks.rank])
    Path(sys.argv[1], f"rank{os.environ['RANK']}").write_text(repr(got))
