"""The tasks (LightningModules): what is learned around a network (loss, metrics, the best value) and the
figures a task publishes to the run directory and the loggers."""

from rnnexp.tasks.base import SequenceTask
from rnnexp.tasks.classifier import SequenceClassifier
from rnnexp.tasks.forecaster import Forecaster
from rnnexp.tasks.language_model import CharLanguageModel
from rnnexp.tasks.regressor import SequenceRegressor

__all__ = ["CharLanguageModel", "Forecaster", "SequenceClassifier", "SequenceRegressor", "SequenceTask"]
