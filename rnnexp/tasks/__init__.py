"""The tasks (LightningModules): what is learned around a network (loss, metrics, the best value) and the
figures a task publishes to the run directory and the loggers."""

from rnnexp.tasks.base import SequenceTask
from rnnexp.tasks.captioner import ImageCaptioner
from rnnexp.tasks.classifier import SequenceClassifier
from rnnexp.tasks.forecaster import Forecaster
from rnnexp.tasks.language_model import CharLanguageModel
from rnnexp.tasks.regressor import SequenceRegressor
from rnnexp.tasks.tagger import TokenTagger
from rnnexp.tasks.text_classifier import TextClassifier
from rnnexp.tasks.translator import CharTranslator

__all__ = [
    "CharLanguageModel",
    "CharTranslator",
    "Forecaster",
    "ImageCaptioner",
    "SequenceClassifier",
    "SequenceRegressor",
    "SequenceTask",
    "TextClassifier",
    "TokenTagger",
]
