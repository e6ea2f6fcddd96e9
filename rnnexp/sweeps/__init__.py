"""Comparing runs: the Hydra callback that summarises a sweep (``summary``), reading a sweep directory into
tables (``records``), plots and the static report (``report``), and the classic pictures of one trained run
(``demonstrations``). The notebooks call these."""
