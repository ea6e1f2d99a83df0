from hydra.errors import CompactHydraException


class UserError(CompactHydraException):
    """An expected mistake (bad path, malformed file, bad config value): reported as one line, no traceback.

    Hydra prints a CompactHydraException as its message alone and exits non-zero.
    """
