"""hydra-submitit-launcher, waiting on each job's rank 0 and on every job of the sweep.

The plugin waits for the result of every task of a job and stops at the first job it cannot get one from. But
rank 0 has already checked the other ranks (and recorded their failure in error.json), so a dead rank must not
hang or abort the wait; and a job whose rank 0 crashed hard must not stop the wait for the others. Such a job
returns nothing, and the collector lists it as unfinished, with its log, and fails the sweep.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class _WaitForEveryJob(submitit_launcher.BaseSubmititLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None
        params = dict(self.params)
        folder = params.pop("submitit_folder")
        timeouts = {f"{self._EXECUTOR}_max_num_timeout": params.pop("max_num_timeout")} if (
            "max_num_timeout" in params) else {}
        executor = submitit.AutoExecutor(folder=folder, cluster=self._EXECUTOR, **timeouts)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        nums = [initial_job_idx + i for i in range(len(job_overrides))]
        for num, overrides in zip(nums, job_overrides):
            log.info(f"\t#{num} : {' '.join(overrides)}")
        jobs = executor.map_array(self, [list(o) for o in job_overrides], ["hydra.sweep.dir"] * len(nums), nums,
                                  [f"job_id_for_{n}" for n in nums], [Singleton.get_state()] * len(nums))
        return [self._rank0_return(job, overrides) for job, overrides in zip(jobs, job_overrides)]

    @staticmethod
    def _rank0_return(job: Any, overrides: Sequence[str]) -> JobReturn:
        import submitit

        rank0 = job.task(0) if job.num_tasks > 1 else job
        try:
            return rank0.result()  # type: ignore[no-any-return]
        except (submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedJobError) as e:
            log.error("job %s (%s) crashed: %s", job.job_id, " ".join(overrides), str(e).splitlines()[0])
            return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None)


class SlurmLauncher(_WaitForEveryJob):
    _EXECUTOR = "slurm"


class LocalLauncher(_WaitForEveryJob):
    _EXECUTOR = "local"
