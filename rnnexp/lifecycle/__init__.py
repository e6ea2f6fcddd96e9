"""A run's lifecycle around Lightning's loop: the checkpoint layout (``checkpoint``: the one owner of every key
rnnexp adds), exact resume (``resume``, ``resume_state``), interrupts (``interrupts``), the non-finite loss
guard (``non_finite``), how a run spreads over processes (``launch``), and what besides its config a run's
numbers depend on (``environment``: the thread-count policy, the environment record, its comparison).
rnnexp's callbacks all live here."""
