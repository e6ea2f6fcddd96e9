"""Imported last by the sweep forkserver (``rnnexp.sweeps.job_processes.WARM_UP``), after every module a job
needs: makes the imported state cheap to share with the jobs forked from it.

``gc.freeze()`` moves every object the imports made (torch, Lightning, Hydra: millions of them) into the
garbage collector's permanent generation. A forked job then never walks them in a collection; without it, the
job's first full collection touches every object's reference count and header, which copies most of the
forkserver's memory into the job page by page (copy-on-write) and costs each job a fraction of a second of
CPU and hundreds of MB of private memory.

Nothing else runs here on purpose: no torch operation (it could start OpenMP's thread pool, which a fork
does not carry), no logging set-up, no Hydra state; each job starts from the state of a fresh ``import``.
"""

import gc

gc.collect()
gc.freeze()
