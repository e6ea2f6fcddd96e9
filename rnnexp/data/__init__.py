"""The data: LightningDataModules that keep whole datasets as tensors in memory (SineWaves, MnistRows,
CharCorpus, CharPairs, ImageCaptions, TextClasses, Tagging), the batching they share, and the character vocabularies."""

from rnnexp.data.char_corpus import CharCorpus
from rnnexp.data.char_pairs import CharPairs
from rnnexp.data.image_captions import ImageCaptions
from rnnexp.data.mnist_rows import MnistRows
from rnnexp.data.sine import SineWaves
from rnnexp.data.tagging import Tagging
from rnnexp.data.text_classes import TextClasses

__all__ = ["CharCorpus", "CharPairs", "ImageCaptions", "MnistRows", "SineWaves", "Tagging", "TextClasses"]
