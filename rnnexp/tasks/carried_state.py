"""Truncated backpropagation through time inside a task: the hidden state carried from batch to batch of
ordered streams (rnnexp.data.streams), shared by every task that reads streams (language model, sine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_warn

from rnnexp.errors import ConfigError
from rnnexp.lifecycle.checkpoint import CARRIED_HIDDEN
from rnnexp.models.recurrent import Hidden, repackage_hidden

STAGES = ("train", "val", "test")


class CarriesHiddenState:
    """Mixin for a LightningModule (listed before it): ``self.carried[stage]`` is the detached final hidden
    state of the stage's previous batch, or None.

    The state is reset at the start of every training epoch and every validation/test pass. Checkpoints hold
    the training state (every rank's) under ``carried_hidden``, so a run resumed mid-epoch continues each
    stream from it. The subclass calls ``init_carried_state`` in ``__init__`` and, in its step,
    ``hidden = self.carried_start(stage)`` before and ``self.carry(stage, final_hidden)`` after the network.
    """

    carry_enabled: bool = False

    def init_carried_state(self, enabled: bool) -> None:
        self.carry_enabled = enabled
        self.carried: dict[str, Hidden | None] = dict.fromkeys(STAGES)
        self.resumed_train_state: dict[str, Any] | None = None  # from a checkpoint, for the next train batch

    def carried_start(self, stage: str) -> Hidden | None:
        """The state this stage's next batch starts from (None: zeros)."""
        return self.carried[stage] if self.carry_enabled else None

    def carry(self, stage: str, hidden: Hidden) -> None:
        """Keep the batch's final state for the next batch, cut from its graph (gradients stop here)."""
        if self.carry_enabled:
            self.carried[stage] = repackage_hidden(hidden)

    def check_streams_agree(self, tbptt: bool | None) -> None:
        """Refuse carrying a state across batches that are not ordered streams (or the reverse)."""
        if tbptt is not None and tbptt != self.carry_enabled:
            raise ConfigError(
                f"task.carry_hidden={self.carry_enabled} disagrees with datamodule.tbptt={tbptt}: "
                "the hidden state can only be carried across ordered streams. Leave task.carry_hidden at its "
                "default ${datamodule.tbptt}."
            )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.check_streams_agree(getattr(self.trainer.datamodule, "tbptt", None))

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self.carried["train"] = None

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self.carried["val"] = None

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.carried["test"] = None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_start(batch, batch_idx)
        if self.resumed_train_state is not None:
            state, self.resumed_train_state = self.resumed_train_state, None
            self.carried["train"] = restored_hidden(state, self.trainer, batch_idx, self.device)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        hidden = self.carried["train"]
        if self.carry_enabled and hidden is not None:  # None on every rank alike: no collective hangs
            checkpoint[CARRIED_HIDDEN] = carried_hidden_state(hidden, self.trainer, self.all_gather)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.resumed_train_state = checkpoint.get(CARRIED_HIDDEN)


def carried_hidden_state(
    hidden: Hidden, trainer: pl.Trainer, all_gather: Callable[[torch.Tensor], torch.Tensor]
) -> dict[str, Any]:
    """The training hidden state for a checkpoint, with where it belongs: the batch of which epoch it starts.

    Every rank carries the state of its own streams, and only rank 0 writes the file, so the states of all
    ranks are gathered into one tensor per part (h, and c for LSTM): ``(world_size, layers, batch, hidden)``.
    Called on every rank, as Lightning saves checkpoints (a collective here is safe).
    """
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    world_size = trainer.world_size
    gathered = [all_gather(part) if world_size > 1 else part.unsqueeze(0) for part in parts]
    return {
        "epoch": trainer.current_epoch,
        "next_batch": trainer.fit_loop.epoch_loop.batch_idx + 1,  # the batch it was carried into
        "world_size": world_size,
        "parts": [part.cpu() for part in gathered],
    }


def restored_hidden(
    state: dict[str, Any], trainer: pl.Trainer, batch_idx: int, device: torch.device
) -> Hidden | None:
    """This rank's hidden state from a checkpoint, when the first batch after resuming is the one it was
    carried into; otherwise (a checkpoint taken at the end of an epoch, whose next batch starts a new
    epoch from zeros) None."""
    if (state["epoch"], state["next_batch"]) != (trainer.current_epoch, batch_idx):
        return None
    if state["world_size"] != trainer.world_size:
        rank_zero_warn(
            f"The checkpoint was written by {state['world_size']} processes and this run has "
            f"{trainer.world_size}, so the streams are laid out differently: the hidden state carried "
            "into this epoch's remaining batches starts from zeros instead."
        )
        return None
    parts = tuple(part[trainer.global_rank].to(device) for part in state["parts"])
    return parts if len(parts) > 1 else parts[0]
