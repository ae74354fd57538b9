"""Data-parallel fine-tuning over a collective library you already run: MPI or torch.distributed.

    # train.py, launched as `mpirun -n 4 python train.py` or `torchrun --nproc-per-node 4 train.py`
    result = sentiment.train(config, distributed="auto")

Every rank calls train() with the same config. train_batch_size is the global batch: each step
each rank trains on its shard and the library sums the gradients through the communicator's
allreduce (sentiment_train_distributed in include/sentiment.h). Rank 0 evaluates and saves;
every rank returns the same result. Neither mpi4py nor torch is a dependency of this package:
each is imported when asked for.

A communicator is any object with `rank`, `world_size` and `allreduce(array)`, which replaces
a float32 numpy array with its elementwise sum over the ranks, in place. A rank that dies or a
collective that times out makes the other ranks raise sentiment.DistributedError.
"""

import os
from datetime import timedelta

# Launchers' environment variables: torchrun sets TORCHELASTIC_RUN_ID (and RANK/WORLD_SIZE),
# Open MPI's mpirun OMPI_COMM_WORLD_SIZE, MPICH's and Intel MPI's PMI_SIZE.
_TORCHRUN = ("TORCHELASTIC_RUN_ID",)
_MPIRUN = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")


class MPI:
    """mpi4py's communicator (default COMM_WORLD); install mpi4py and an MPI (Debian: openmpi-bin)."""

    def __init__(self, comm=None):
        try:
            from mpi4py import MPI as mpi
        except ImportError as e:
            raise ImportError('distributed="mpi" needs mpi4py: pip install mpi4py (and an MPI, e.g. '
                              "apt-get install openmpi-bin libopenmpi-dev)") from e
        self._mpi = mpi
        self.comm = comm if comm is not None else mpi.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.world_size = self.comm.Get_size()

    def allreduce(self, array):
        self.comm.Allreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM)


class Torch:
    """torch.distributed. Outside an initialized process group it starts one with the gloo
    backend (CPU, TCP) from torchrun's environment (env://), with `timeout`: a rank that stops
    answering makes the others fail after that long instead of waiting forever."""

    def __init__(self, group=None, timeout=timedelta(minutes=5)):
        try:
            import torch
            import torch.distributed as dist
        except ImportError as e:
            raise ImportError('distributed="torch" needs PyTorch: pip install torch') from e
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=timeout)
        self._torch, self._dist, self.group = torch, dist, group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)

    def allreduce(self, array):
        self._dist.all_reduce(self._torch.from_numpy(array), group=self.group)


def communicator(spec):
    """The communicator `spec` names: "mpi", "torch", "auto" (from the launcher's environment:
    torchrun, then mpirun; one process when neither launched this one) or an object with rank,
    world_size and allreduce. None for a single-process run."""
    if spec is None:
        return None
    if spec == "mpi":
        return MPI()
    if spec == "torch":
        return Torch()
    if spec == "auto":
        if any(v in os.environ for v in _TORCHRUN):
            return Torch()
        if any(v in os.environ for v in _MPIRUN):
            return MPI()
        return None
    if isinstance(spec, str):
        raise ValueError(f'distributed must be "mpi", "torch", "auto" or a communicator, not {spec!r}')
    for name in ("rank", "world_size", "allreduce"):
        if not hasattr(spec, name):
            raise TypeError(f"distributed: {type(spec).__name__} has no {name!r} (a communicator needs "
                            "rank, world_size and allreduce(array))")
    return spec
