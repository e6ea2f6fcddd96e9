"""Comparing runs: the Hydra callback that summarises a sweep (``summary``), reading a sweep directory into
tables (``records``), plots and the static report (``report``, with Optuna's plots from ``study_plots``), and
the classic pictures of one trained run (``demonstrations``). What an Optuna trial's job needs: reporting to
its trial and being pruned (``pruning``), the study's storage (``storage``), its place in the sweep
(``jobs``) and what the dashboards show of it (``dashboards``). The notebooks call these."""
