# No `from __future__ import annotations`: Hydra loads this module outside sys.modules, where dataclasses
# cannot resolve string annotations.
"""The launcher's structured config, registered in Hydra's ConfigStore as ``hydra/launcher=rnnexp_parallel``
(``conf/hydra/launcher/parallel.yaml`` selects it with two jobs in flight)."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class ParallelLauncherConf:
    """``hydra.launcher.*``."""

    _target_: str = "hydra_plugins.rnnexp_parallel_launcher.launcher.ParallelLauncher"
    n_jobs: int = 2  # jobs in flight at once on this machine
    preload: bool = (
        True  # fork jobs from a process that imported torch + Lightning once; false: fresh interpreters
    )
    threads_per_job: int | None = None  # torch CPU threads of each job; null: the sweeps' common share


def register() -> None:
    ConfigStore.instance().store(
        group="hydra/launcher", name="rnnexp_parallel", node=ParallelLauncherConf, provider="rnnexp"
    )


register()
