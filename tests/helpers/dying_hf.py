"""A test-only HF adapter that kills its rank after some batches when EVALRUNNER_TEST_DIE_AFTER is set.

The setting is an environment variable, not a config key, so that the rerun that resumes the job has the same config.
"""

import os
from typing import Any

from evalrunner.models.hf import HFModel


class DyingHF(HFModel):
    batches = 0

    def generate(self, batch: Any) -> list[str]:
        die_after = os.environ.get("EVALRUNNER_TEST_DIE_AFTER")
        if die_after and os.environ.get("RANK") == "1" and self.batches == int(die_after):
            os._exit(9)
        self.batches += 1
        return super().generate(batch)
