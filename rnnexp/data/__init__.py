"""The data: LightningDataModules that keep whole datasets as tensors in memory (SineWaves, MnistRows,
CharCorpus), the batching they share, and the character vocabulary."""

from rnnexp.data.char_corpus import CharCorpus
from rnnexp.data.mnist_rows import MnistRows
from rnnexp.data.sine import SineWaves

__all__ = ["CharCorpus", "MnistRows", "SineWaves"]
