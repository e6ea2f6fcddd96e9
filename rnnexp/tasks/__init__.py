"""LightningModules: what is learned (loss, metrics, figures) around a RecurrentNet."""

from rnnexp.tasks.base import SequenceTask
from rnnexp.tasks.classifier import SequenceClassifier
from rnnexp.tasks.forecaster import Forecaster
from rnnexp.tasks.language_model import CharLanguageModel
from rnnexp.tasks.regressor import SequenceRegressor

__all__ = ["CharLanguageModel", "Forecaster", "SequenceClassifier", "SequenceRegressor", "SequenceTask"]
