"""The station's brain: package intake, assignment, missions, store, API and the `lastmile` CLI."""

import os

# numpy's and scipy's OpenBLAS each start a thread per core at import, and those threads spin for a while
# after every call. The controller's matrices are fleet-by-queue sized, far too small to gain from them,
# and on a station's small machine the spinning took a core's share from the store and the event loop
# (3-7 % of all instructions under batch intake, counted with callgrind). A value set by the user is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
