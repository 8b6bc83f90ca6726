"""Who am I, among how many: the communicator the training loop talks to, for one process or an MPI world.

    comm = world()              # Single() in a plain process; MPIWorld() under `mpiexec -n N`
    comm.rank, comm.size        # 0 .. size-1, and N
    comm.allreduce_(buf, "sum") # buf (n,) summed over the ranks in place, on every rank ("min", "max" too)
    comm.sendrecv(send, dest, recv, source)   # one neighbour exchange (the ring all-reduce is made of these)
    comm.reduce_scatter_(buf, mine, counts)   # ZeRO-1: the sum of buf's chunk `rank` into mine
    comm.allgather_(buf, counts)              # ZeRO-1: every rank's chunk of buf to every rank, in place
    comm.any(flag)              # True on every rank if it is True on one: a collective decision
    comm.barrier(); comm.abort(code)

How a process knows it runs under MPI: the launcher sets environment variables before the program starts
(MPICH and Intel MPI: PMI_SIZE; Open MPI: OMPI_COMM_WORLD_SIZE; MVAPICH: MV2_COMM_WORLD_SIZE). Only when one
of them says the world has more than one process is mpi4py imported (importing it initialises MPI), so a
plain `minigpt train` never touches MPI, and a machine without mpi4py never needs it. Under mpiexec without
mpi4py, world() refuses: N copies of the same single-process run would overwrite each other's files.

Every buffer moved is a NumPy array, through mpi4py's upper-case methods (Allreduce, Sendrecv, ...), which
send the raw memory: no pickle, here as everywhere in minigpt.

What this file deliberately does not do: sub-communicators, non-blocking calls, or any networking of its
own (MPI chooses shared memory on one machine and the network between machines).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class ParallelError(ValueError):
    """A data-parallel run that cannot go on: MPI missing, a changed world size, ranks that disagree."""


class Single:
    """The world of one process: every collective operation is the identity."""

    rank = 0
    size = 1

    def allreduce_(self, buf: np.ndarray, op: str = "sum") -> np.ndarray:
        return buf

    def sendrecv(self, send: np.ndarray, dest: int, recv: np.ndarray, source: int) -> None:
        recv[...] = send                               # a ring of one: the message comes back to us

    def reduce_scatter_(self, buf: np.ndarray, mine: np.ndarray, counts: list[int]) -> np.ndarray:
        mine[...] = buf[: counts[0]]
        return mine

    def allgather_(self, buf: np.ndarray, counts: list[int]) -> np.ndarray:
        return buf

    def any(self, flag: bool) -> bool:
        return bool(flag)

    def barrier(self) -> None:
        pass

    def abort(self, code: int = 1) -> None:
        sys.exit(code)


class MPIWorld:
    """MPI.COMM_WORLD through mpi4py: the processes mpiexec started, ranks 0 .. size-1."""

    def __init__(self, mpi: Any):
        self._mpi = mpi
        self._comm = mpi.COMM_WORLD
        self.rank = self._comm.Get_rank()
        self.size = self._comm.Get_size()

    def allreduce_(self, buf: np.ndarray, op: str = "sum") -> np.ndarray:
        """MPI_Allreduce in place on a contiguous NumPy buffer: every rank ends with the same result."""
        if not buf.flags.c_contiguous:
            raise ValueError("allreduce_ needs a contiguous array (np.ascontiguousarray)")
        ops = {"sum": self._mpi.SUM, "min": self._mpi.MIN, "max": self._mpi.MAX}
        self._comm.Allreduce(self._mpi.IN_PLACE, buf, op=ops[op])
        return buf

    def sendrecv(self, send: np.ndarray, dest: int, recv: np.ndarray, source: int) -> None:
        """Send `send` to rank dest while receiving into `recv` from rank source (no deadlock in a ring)."""
        self._comm.Sendrecv(np.ascontiguousarray(send), dest=dest, recvbuf=recv, source=source)

    def reduce_scatter_(self, buf: np.ndarray, mine: np.ndarray, counts: list[int]) -> np.ndarray:
        """MPI_Reduce_scatter: buf (n,) summed over the ranks, chunk r (counts[r] elements, in rank order)
        landing in `mine` on rank r."""
        if not buf.flags.c_contiguous:
            raise ValueError("reduce_scatter_ needs a contiguous array (np.ascontiguousarray)")
        self._comm.Reduce_scatter(buf, mine, recvcounts=list(counts), op=self._mpi.SUM)
        return mine

    def allgather_(self, buf: np.ndarray, counts: list[int]) -> np.ndarray:
        """MPI_Allgatherv in place: rank r's chunk of buf (counts[r] elements, in rank order) copied to every
        rank."""
        if not buf.flags.c_contiguous:
            raise ValueError("allgather_ needs a contiguous array (np.ascontiguousarray)")
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
        self._comm.Allgatherv(self._mpi.IN_PLACE, [buf, (list(counts), displs)])
        return buf

    def any(self, flag: bool) -> bool:
        buf = np.array([1 if flag else 0], dtype=np.int64)
        return bool(self.allreduce_(buf, "max")[0])

    def barrier(self) -> None:
        self._comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """Stop every rank now (mpiexec kills them): for an error on one rank the others cannot know of."""
        self._comm.Abort(code)


Comm = Single | MPIWorld


def launched_size(environ: dict[str, str] | None = None) -> int:
    """The world size an MPI launcher announced in the environment, 1 when none did."""
    env = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        value = env.get(name, "")
        if value.strip().isdigit():
            return int(value)
    return 1


def world() -> Comm:
    """The communicator of this process: MPIWorld under an MPI launcher with more than one process, else
    Single (and then mpi4py is not even imported)."""
    size = launched_size()
    if size <= 1:
        return Single()
    try:
        from mpi4py import MPI  # optional, imported only under mpiexec (the import initialises MPI)
    except ImportError:
        raise ParallelError(f"this process was started by an MPI launcher ({size} processes) but mpi4py is "
                            "not installed: pip install -e '.[distributed]' (mpi4py + mpich), or run "
                            "without mpiexec") from None
    return MPIWorld(MPI)
