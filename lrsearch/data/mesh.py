"""The batch under `keras.distribution` (JAX): how many devices split it, and the check
that it splits evenly.

Under `keras.distribution.DataParallel` (or a `ModelParallel` with a batch axis) every
batch `fit` reads is the global batch: its first axis is cut into equal shards, one for
each device along the mesh's batch axis, and the loss is the mean over all of its samples.
A batch that does not divide evenly cannot be laid out; JAX's own error says so in terms
of shardings, so lrsearch refuses it first, in one line.

Example:

    keras.distribution.set_distribution(keras.distribution.DataParallel())
    batch_shards()                     # 8 on 8 devices
    check_global_batch(60)             # ConfigError: 60 samples on 8 devices
"""

from __future__ import annotations

import keras

from lrsearch.core.errors import ConfigError

__all__ = ["batch_shards", "check_global_batch"]


def batch_shards() -> int:
    """Devices the active `keras.distribution` splits a batch's first axis over (1 without one)."""
    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    mesh = distribution.device_mesh
    sizes = dict(zip(mesh.axis_names, mesh.shape))
    return int(sizes.get(distribution.batch_dim_name, 1))


def check_global_batch(size: int, what: str = "batch") -> None:
    """Refuse a global batch that the active distribution's devices cannot split evenly.

    Raises:
        ConfigError: `size` is not a multiple of `batch_shards()`.
    """
    shards = batch_shards()
    if shards > 1 and int(size) % shards:
        raise ConfigError(
            f"the {what} of {int(size)} samples does not split evenly over the {shards} devices of the "
            f"keras.distribution; use a batch size (and data sizes) that are a multiple of {shards}"
        )
