"""What the two token-id tasks (text classifier, tagger) share: an embedding of ``task.embedding_dim`` in front
of the recurrent net, sized by the vocabulary and label names of the one datamodule that feeds them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytorch_lightning as pl

from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.models.token_net import TokenRecurrentNet, check_embedding_dim


class TokenTask:
    """Mixin of a ``SequenceTask`` on token ids. A subclass names its datamodule class and config, its own
    config name, and whether it predicts a label per token (``per_token``) or one per text."""

    datamodule_class: ClassVar[type[pl.LightningDataModule]]
    datamodule_config: ClassVar[str]  # e.g. "text_classes": the datamodule config that selects the task
    task_config: ClassVar[str]  # e.g. "text_classifier"
    per_token: ClassVar[bool]

    net: TokenRecurrentNet

    @property
    def class_names(self) -> list[str]:
        return list(self.net.labels)

    @classmethod
    def net_options(cls, task_cfg: Mapping[str, Any]) -> dict[str, Any]:
        return {"embedding_dim": task_cfg["embedding_dim"]}

    @classmethod
    def build_net(
        cls, spec: RecurrentSpec, datamodule: pl.LightningDataModule, embedding_dim: int
    ) -> TokenRecurrentNet:
        """The vocabulary and labels size the network, so the files are read here, after the cheap checks.

        Raises ``ConfigError`` for a bad ``embedding_dim`` or another datamodule than the task's own."""
        check_embedding_dim(embedding_dim)
        if not isinstance(datamodule, cls.datamodule_class):
            raise ConfigError(
                f"task={cls.task_config} needs datamodule={cls.datamodule_config}, got "
                f"{type(datamodule).__name__}; use datamodule={cls.datamodule_config} (it selects this task)."
            )
        datamodule.setup("fit")
        return TokenRecurrentNet(
            spec, datamodule.vocab, datamodule.class_names, embedding_dim, cls.per_token, datamodule.tokenizer
        )
