"""LightningDataModules that keep whole datasets as tensors in memory."""

from rnnexp.data.char_corpus import CharCorpus
from rnnexp.data.mnist_rows import MnistRows
from rnnexp.data.sine import SineWaves

__all__ = ["CharCorpus", "MnistRows", "SineWaves"]
