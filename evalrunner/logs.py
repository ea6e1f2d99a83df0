"""The job's log: lines of ranks other than 0 carry their rank, and a user error also lands in the log file.

Hydra sets up the handlers (console, and `<job>.log` in the job's folder); every rank runs the Hydra job, so this
only adjusts what they write.
"""

import logging

log = logging.getLogger("evalrunner")


class _RankPrefix(logging.Filter):
    def __init__(self, rank: int) -> None:
        super().__init__()
        self.prefix = f"[rank {rank}] "

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            record.msg = f"{self.prefix}{record.msg}"
        return True


def for_rank(rank: int) -> None:
    """Ranks other than 0 log warnings and errors only, each line prefixed with the rank."""
    if rank == 0:
        return
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    for handler in root.handlers:
        if not any(isinstance(f, _RankPrefix) for f in handler.filters):
            handler.addFilter(_RankPrefix(rank))


def to_file(message: str) -> None:
    """Write an error to the log files only: the console shows it once, as the one-line error."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers + log.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
