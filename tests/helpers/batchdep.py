"""A test-only model that, like a real HF model, does not declare its output independent of its batch."""

from evalrunner.models.nearest import NearestDemo


class BatchDependent(NearestDemo):
    batch_invariant = False
