"""What every task shares: the network, one model_step for all stages, optimizers and the gradient norm."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.utilities import GradClipAlgorithmType
from torch import nn
from torchmetrics import MeanMetric, Metric

from rnnexp.lifecycle.checkpoint import write_identity
from rnnexp.lifecycle.validation_clock import (
    StepSchedulersAtValidation,
    is_fit_validation,
    validations_in_run,
)
from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec
from rnnexp.tasks.step_metrics import accumulate

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


class SequenceTask(pl.LightningModule):
    """Base LightningModule: subclasses define ``loss``, ``update_metrics`` and the metric objects.

    The network, optimizer and scheduler arrive as objects (Hydra builds the last two with ``_partial_``),
    so a task never parses strings; the network's spec is stored in each checkpoint so
    ``rnnexp.lifecycle.checkpoint.load_task`` can rebuild it.
    """

    def __init__(
        self,
        net: RecurrentNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
    ):
        super().__init__()
        # logger=False: train() logs the whole resolved config; these would overwrite its `task` entry.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_monitor = scheduler_monitor
        self.last_grad_norm: torch.Tensor | None = None
        # (optimizer, norm) of this step's gradients, taken before clipping; reused to clip them
        self.step_grad_norm: tuple[torch.optim.Optimizer, torch.Tensor] | None = None
        # Batch-size-weighted mean loss per stage: every task logs a comparable `<stage>/loss`.
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()

    @classmethod
    def net_options(cls, task_cfg: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``build_net`` taken from the task config (e.g. an embedding size); none here."""
        return {}

    @classmethod
    def build_net(cls, spec: RecurrentSpec, datamodule: pl.LightningDataModule) -> nn.Module:
        """The network this task trains, sized by the datamodule (a task with another network overrides it)."""
        return RecurrentNet(
            spec,
            input_size=datamodule.input_size,
            output_size=datamodule.output_size,
            per_step=datamodule.per_step,
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, lengths=lengths)

    def batch_predictions(
        self, inputs: torch.Tensor, stage: str, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The predictions ``model_step`` scores; a task that carries state between batches overrides it.

        ``lengths`` ``(batch,)`` comes with variable-length batches: real steps per right-padded row.
        """
        return self(inputs, lengths)

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update_metrics(self, stage: str, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Update the stage's torchmetrics objects (``update``, not a per-batch value); ``log_epoch_metrics``
        logs them."""
        raise NotImplementedError

    def log_epoch_metrics(self, stage: str) -> None:
        """Log the stage's metric objects once, at the end of its epoch; Lightning computes and resets them.

        Not per batch: every ``self.log`` call costs Lightning about a millisecond of Python on a CPU, as much
        as a small RNN's whole training step (see benchmarks/train_step_overhead.py).
        """
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), prog_bar=True)

    def model_step(self, batch: tuple[torch.Tensor, ...], stage: str) -> dict[str, torch.Tensor]:
        """A batch is ``(inputs, targets)`` or, for variable-length sequences, ``(inputs, targets, lengths)``:
        inputs ``(batch, time, features)`` right-padded, lengths ``(batch,)`` int64 real steps per row."""
        inputs, targets, *rest = batch
        preds = self.batch_predictions(inputs, stage, *rest)
        loss = self.loss(preds, targets)
        accumulate(getattr(self, f"{stage}_loss"), loss.detach(), weight=inputs.shape[0])
        self.update_metrics(stage, preds.detach(), targets)
        return {"loss": loss, "preds": preds.detach()}

    def on_train_epoch_end(self) -> None:
        self.log_epoch_metrics("train")

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        """``(logged name, Min/MaxMetric holding the best value, the validation metric it tracks)``."""
        raise NotImplementedError

    def on_train_start(self) -> None:
        # The sanity check's validation must not count as the best epoch; a resumed run keeps the best
        # value restored from its checkpoint (rnnexp.lifecycle.resume_state.ResumeState).
        if self.trainer.ckpt_path is None:
            self.best_tracker()[1].reset()
        if getattr(self, "run_length_t_max", False):
            # Here, not in configure_optimizers: counting the batches there would build the training loader
            # before a resumed run restores its position in the epoch.
            steps = validations_in_run(self.trainer)
            for config in self.trainer.lr_scheduler_configs:
                config.scheduler.T_max = steps

    def on_validation_epoch_end(self) -> None:
        self.log_epoch_metrics("val")
        if self.trainer.sanity_checking:
            return
        name, best, current = self.best_tracker()
        if is_fit_validation(self.trainer):  # as the best checkpoint: chosen among the fit's validations
            best(current.compute())
        self.log(name, best.compute(), prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self.log_epoch_metrics("test")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        # Only the loss: Lightning detaches every other entry of a returned dict each step, unread in training.
        return self.model_step(batch, "train")["loss"]

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self.model_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self.model_step(batch, "test")

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Lightning calls this after backward and before gradient clipping: the norm logged is the raw one,
        # over the optimizer's parameters (those Lightning clips; no walk over every submodule each step).
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self.step_grad_norm = None
        if grads:
            self.last_grad_norm = torch.nn.utils.get_total_norm(grads, norm_type=2.0).detach()
            self.step_grad_norm = (optimizer, self.last_grad_norm)
            if self.loggers_write_this_step():
                # Now, before the callbacks' batch-end hooks: a step checkpoint taken there holds the row, so
                # a run resumed from it writes the same CSV as one never stopped.
                self.write_step_row({"train/grad_norm": self.last_grad_norm})
            else:
                vars(self)["unwritten_grad_norm"] = self.last_grad_norm

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Lightning also writes the step at which the run stops, known only after the callbacks' batch-end
        # hooks (the run-end validation, a Timer): that step's norm is written here, as ``self.log`` would.
        grad_norm = vars(self).pop("unwritten_grad_norm", None)
        if grad_norm is not None and self.loggers_write_this_step():
            self.write_step_row({"train/grad_norm": grad_norm})

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip by norm with the norm ``on_before_optimizer_step`` just took of the same gradients, instead of
        Lightning taking it a second time (``clip_grad_norm_`` is ``get_total_norm`` + ``clip_grads_with_norm_``,
        so the result is the same). Other algorithms, precisions and strategies: Lightning's own clipping."""
        computed, self.step_grad_norm = getattr(self, "step_grad_norm", None), None
        plugin = self.trainer.precision_plugin  # 32-bit or bf16: gradients are not scaled, as fp16 AMP's are
        plain_precision = type(plugin) is Precision or (
            type(plugin) is MixedPrecision and plugin.scaler is None
        )
        if (
            gradient_clip_val
            and gradient_clip_algorithm in (None, GradClipAlgorithmType.NORM)
            and computed is not None
            and computed[0] is optimizer
            and plain_precision
        ):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grads_with_norm_(params, gradient_clip_val, computed[1])
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def write_step_row(self, values: Mapping[str, torch.Tensor | float]) -> None:
        """Send this training step's ``values`` straight to the loggers, in the row (``epoch``, ``step``)
        ``self.log(..., on_step=True)`` would give them, as Lightning's own ``LearningRateMonitor`` writes.

        Not ``self.log``: a value logged once stays in Lightning's result collection for the epoch, and
        Lightning then re-reads the whole collection after every step, logged or not (``on_batch_end``):
        measured on the tanh-RNN classifier's step, ~2 % of it, and the ~0.7 ms ``self.log`` call itself. The
        values leave Lightning's ``callback_metrics`` (nothing monitors a step value). Call it only where
        ``loggers_write_this_step()`` is true. On a GPU each value is read once here (a wait for the device, on
        the logging steps only), as Lightning reads a logged value when it writes it."""
        if not self.loggers:
            return  # no wait for the device for a row nobody writes
        row = {name: float(value) for name, value in values.items()}
        row.setdefault("epoch", self.current_epoch)
        # The step Lightning writes this step's on_step values at: batches stepped so far, before this one.
        step = self.trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in self.loggers:
            logger.log_metrics(row, step=step)

    def loggers_write_this_step(self) -> bool:
        """Whether Lightning sends this step's ``on_step`` values to the loggers (every
        ``trainer.log_every_n_steps``): a value logged on other steps would cost a ``self.log`` and be dropped.
        The test is Lightning's own, as its LearningRateMonitor uses it."""
        return self.trainer._logger_connector.should_update_logs or bool(self.trainer.fast_dev_run)

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError("SequenceTask needs an optimizer factory to train (the `optimizer` config).")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        # `T_max: null` spans the whole run, known once the training batches are counted: on_train_start.
        self.run_length_t_max = getattr(self.scheduler_factory, "keywords", {}).get("T_max", 0) is None
        options = {"T_max": 1} if self.run_length_t_max else {}
        scheduler = self.scheduler_factory(optimizer=optimizer, **options)
        # Stepped once per validation of the fit by StepSchedulersAtValidation (configure_callbacks), not
        # by Lightning's intervals, which tick whether or not a validation ran. `reduce_on_plateau: False`
        # keeps Lightning from looking up a monitor itself; `interval` is what LearningRateMonitor reads.
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "reduce_on_plateau": False},
        }

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """Lightning's interval ticks are ignored: StepSchedulersAtValidation steps the schedulers."""

    def configure_callbacks(self) -> list[pl.Callback]:
        present = any(isinstance(c, StepSchedulersAtValidation) for c in self.trainer.callbacks)
        if self.scheduler_factory is None or present:  # present: added by an earlier fit/test of this trainer
            return []
        return [StepSchedulersAtValidation(self.scheduler_monitor)]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        write_identity(checkpoint, self)
