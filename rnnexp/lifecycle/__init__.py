"""A run's lifecycle around Lightning's loop: the checkpoint layout (``checkpoint``: the one owner of every key
rnnexp adds), exact resume (``resume``, ``resume_state``), interrupts (``interrupts``), the non-finite loss
guard (``non_finite``) and how a run spreads over processes (``launch``). rnnexp's callbacks all live here."""
