"""hydra-submitit-launcher, waiting on each job's rank 0 and on every job of the sweep, K jobs per array element.

The plugin waits for the result of every task of a job and stops at the first job it cannot get one from. But
rank 0 has already checked the other ranks (and recorded their failure in error.json), so a dead rank must not
hang or abort the wait; and a job whose rank 0 crashed hard must not stop the wait for the others. Such a job
returns nothing, and the collector lists it as unfinished, with its log, and fails the sweep.

`jobs_per_task=K` runs K jobs of the sweep one after another in each array element, in the same processes, so the
later ones reuse the model the first one loaded (evalrunner/models/reuse.py) and the process group its ranks made.
Each job is still set up by the plugin's own `__call__` (its folder, .hydra/, log and job number), as if alone.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from omegaconf import OmegaConf

log = logging.getLogger(__name__)
_Job = tuple[list[str], str, int, str, Any]  # the arguments of the plugin's __call__: one job of the sweep


class PackedJobs:
    """One array element: its jobs in sweep order. A requeue keeps what is done: the checkpoint pickles the returns of
    the finished jobs, so the requeued element starts at its first unfinished job, which resumes from its partial
    predictions. Every rank runs the same jobs in the same order, since all ranks restart from rank 0's pickle."""

    def __init__(self, launcher: "_WaitForEveryJob", jobs: list[_Job]) -> None:
        self.launcher, self.jobs = launcher, jobs
        self.done: list[JobReturn] = []

    def __call__(self) -> list[JobReturn]:
        while len(self.done) < len(self.jobs):
            self.done.append(self.launcher(*self.jobs[len(self.done)]))
        return list(self.done)

    def checkpoint(self) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self)


class _WaitForEveryJob(submitit_launcher.BaseSubmititLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        from evalrunner.errors import UserError  # not at the top: evalrunner.config imports this module

        assert self.config is not None
        params = dict(self.params)
        folder = params.pop("submitit_folder")
        per_task = params.pop("jobs_per_task")
        if not isinstance(per_task, int) or per_task < 1:
            raise UserError(f"hydra.launcher.jobs_per_task={per_task}: use a positive number of jobs per element")
        timeouts = (
            {f"{self._EXECUTOR}_max_num_timeout": params.pop("max_num_timeout")}
            if ("max_num_timeout" in params)
            else {}
        )
        executor = submitit.AutoExecutor(folder=folder, cluster=self._EXECUTOR, **timeouts)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        state = Singleton.get_state()
        jobs: list[_Job] = []
        for i, overrides in enumerate(job_overrides):
            num = initial_job_idx + i
            log.info(f"\t#{num} : {' '.join(overrides)}")
            jobs.append((list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", state))
        packs = [jobs[i : i + per_task] for i in range(0, len(jobs), per_task)]
        if per_task > 1:
            log.info("%d jobs in %d array element(s), up to %d each", len(jobs), len(packs), per_task)
        with executor.batch():
            elements = [executor.submit(PackedJobs(self, pack)) for pack in packs]
        return [r for element, pack in zip(elements, packs) for r in self._rank0_returns(element, pack)]

    @staticmethod
    def _rank0_returns(element: Any, pack: list[_Job]) -> list[JobReturn]:
        import submitit

        rank0 = element.task(0) if element.num_tasks > 1 else element
        try:
            return rank0.result()  # type: ignore[no-any-return]
        except (submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedJobError) as e:
            log.error(
                "job %s (%s) crashed: %s",
                element.job_id,
                "; ".join(" ".join(job[0]) for job in pack),
                str(e).splitlines()[0],
            )
            # Its finished jobs are in their folders all the same: the collector reads them there.
            return [JobReturn(overrides=job[0], status=JobStatus.COMPLETED, _return_value=None) for job in pack]


class SlurmLauncher(_WaitForEveryJob):
    _EXECUTOR = "slurm"


class LocalLauncher(_WaitForEveryJob):
    _EXECUTOR = "local"


@dataclass
class LocalConf(LocalQueueConf):
    _target_: str = f"{__name__}.LocalLauncher"
    jobs_per_task: int = 1  # jobs of the sweep run one after another in each array element


@dataclass
class SlurmConf(SlurmQueueConf):
    _target_: str = f"{__name__}.SlurmLauncher"
    jobs_per_task: int = 1  # jobs of the sweep run one after another in each array element


# conf/hydra/launcher/{local,slurm}.yaml extend these: the plugin's own schemas would refuse jobs_per_task.
ConfigStore.instance().store(group="hydra/launcher", name="evalrunner_local", node=LocalConf, provider="evalrunner")
ConfigStore.instance().store(group="hydra/launcher", name="evalrunner_slurm", node=SlurmConf, provider="evalrunner")
