"""Chapter 13, data parallelism: N processes train one model, each on its slice of every batch.

    comm.py        world(): who am I (rank) among how many (size); a single process, or an MPI world
                   through mpi4py when the process was started by mpiexec
    allreduce.py   the ring all-reduce (the definition the chapter teaches, neighbour sends only) beside
                   MPI's own Allreduce (the engine); packing gradients into one flat buffer
    zero.py        ZeRO-1 (--zero 1): AdamW's moments split over the ranks; reduce-scatter, a shard step,
                   all-gather; equal to optim.AdamW after the all-reduce
    team.py        the step engine: the same split inside one `minigpt train`, without MPI: each step's
                   batch cut by rows over worker processes on this machine (one per core, a GIL each),
                   their gradients added in a shared-memory file; equal to gpt_loss_and_grads to rounding

The training loop (minigpt/training/loop.py) uses both: every rank draws the same global batch, keeps its
slice (minigpt/training/batches.py's shard), and the gradients are summed across ranks by one all-reduce
before clipping and the AdamW step, so every rank takes the same step.

What this package deliberately does not do: networking of its own (MPI moves the bytes), GPUs, model or
pipeline parallelism.
"""
