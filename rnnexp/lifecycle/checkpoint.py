"""The checkpoint layout: every key rnnexp adds to Lightning's checkpoint, which files a run directory holds,
and how a task is rebuilt from them. Writers and readers call this module; nobody else names a key.

A ``.ckpt`` file is Lightning's dict (``state_dict``, ``optimizer_states``, ``lr_schedulers``, ``loops``,
``callbacks``, ``hyper_parameters``, ...) plus rnnexp's entries:

=============================== ======================================================= ===========================
key                             what it holds                                           filled by
=============================== ======================================================= ===========================
``rnnexp``                      ``{"task", "net_class", "net"}``: the task's and the    ``SequenceTask.on_save_checkpoint``
                                network's stable class names (``CLASS_PATHS``) and the  (``write_identity``)
                                network's description, enough to rebuild it
``metric_states``               every torchmetrics accumulator of the task              ``ResumeState`` callback
``metric_states_epoch_finished`` whether the checkpoint was taken after the epoch's      ``ResumeState``
                                last batch (its accumulators are then stale)
``metric_states_validation_``   whether it was taken at the end of a validation (a step  ``ResumeState``
``finished``                    cadence): that validation's accumulators are stale
``metric_states_by_rank``       the accumulators of every rank (multi-process runs)    ``ResumeState``
``carried_hidden``              the truncated-BPTT hidden state carried into the next   ``CarriesHiddenState``
                                batch, with its epoch, batch and world size             (language model, sine streams)
=============================== ======================================================= ===========================

Inside Lightning's own entries, rnnexp's objects keep their state too: ``callbacks["ResumeState"]`` holds the
random generators' states, and the training loader's sampler position (epoch, batches read) is saved by
Lightning's loops through ``ResumableLoader.state_dict``.

Class names are stored short and stable (``CharLanguageModel``), so moving a module never breaks a saved run;
``LEGACY_NAMES`` maps the qualified names that checkpoints of the flat layout (before 0.2) stored.
All loading is ``torch.load(weights_only=True)``: a checkpoint is a pickle, and a full unpickle of an
untrusted file can run arbitrary code.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytorch_lightning as pl
import torch

from rnnexp.errors import DataError
from rnnexp.models.cell_contract import check_checkpoint_cell

if TYPE_CHECKING:
    from rnnexp.models.char_rnn import CharRNN
    from rnnexp.models.char_seq2seq import CharSeq2Seq
    from rnnexp.models.token_net import TokenRecurrentNet
    from rnnexp.tasks.base import SequenceTask

IDENTITY = "rnnexp"
METRIC_STATES = "metric_states"
METRIC_STATES_EPOCH_FINISHED = "metric_states_epoch_finished"
METRIC_STATES_BY_RANK = "metric_states_by_rank"
METRIC_STATES_VALIDATION_FINISHED = "metric_states_validation_finished"
CARRIED_HIDDEN = "carried_hidden"

CHECKPOINT_FOLDER = "checkpoints"  # inside a run directory
RESULTS_FILE = "results.json"  # names the best checkpoint of a finished run

# The stable name stored in a checkpoint -> where the class lives now. A new task or network that is saved in
# checkpoints is added here; moving a class changes only its path.
CLASS_PATHS = {
    "SequenceClassifier": "rnnexp.tasks.classifier.SequenceClassifier",
    "SequenceRegressor": "rnnexp.tasks.regressor.SequenceRegressor",
    "CharLanguageModel": "rnnexp.tasks.language_model.CharLanguageModel",
    "Forecaster": "rnnexp.tasks.forecaster.Forecaster",
    "RecurrentNet": "rnnexp.models.recurrent.RecurrentNet",
    "CharRNN": "rnnexp.models.char_rnn.CharRNN",
    "EncoderDecoder": "rnnexp.models.seq2seq.EncoderDecoder",
    "CharTranslator": "rnnexp.tasks.translator.CharTranslator",
    "ImageCaptioner": "rnnexp.tasks.captioner.ImageCaptioner",
    "CharSeq2Seq": "rnnexp.models.char_seq2seq.CharSeq2Seq",
    "CaptionNet": "rnnexp.models.caption_net.CaptionNet",
    "ValueRegressor": "rnnexp.tasks.value_regressor.ValueRegressor",
    "CopyMemoryClassifier": "rnnexp.tasks.copy_memory.CopyMemoryClassifier",
    "TextClassifier": "rnnexp.tasks.text_classifier.TextClassifier",
    "TokenTagger": "rnnexp.tasks.tagger.TokenTagger",
    "TokenRecurrentNet": "rnnexp.models.token_net.TokenRecurrentNet",
}
# Qualified names written by the flat layout -> stable names.
LEGACY_NAMES = {
    "rnnexp.tasks.classifier.SequenceClassifier": "SequenceClassifier",
    "rnnexp.tasks.regressor.SequenceRegressor": "SequenceRegressor",
    "rnnexp.tasks.language_model.CharLanguageModel": "CharLanguageModel",
    "rnnexp.network.RecurrentNet": "RecurrentNet",
    "rnnexp.char_model.CharRNN": "CharRNN",
}


def stable_name(cls: type) -> str:
    """The name a checkpoint stores for ``cls``; a class missing from ``CLASS_PATHS`` is a bug in rnnexp."""
    path = f"{cls.__module__}.{cls.__qualname__}"
    for name, registered in CLASS_PATHS.items():
        if registered == path:
            return name
    raise KeyError(f"{path} is not registered in rnnexp.lifecycle.checkpoint.CLASS_PATHS.")


def resolve_class(name: str, path: str | Path) -> type:
    """The class a checkpoint names (stable or legacy name); anything else is refused, not imported."""
    stable = LEGACY_NAMES.get(name, name)
    if stable not in CLASS_PATHS:
        raise DataError(
            f"Checkpoint {path} names class {name!r}, which this version of rnnexp does not know "
            f"(known: {sorted(CLASS_PATHS)})."
        )
    module_name, _, class_name = CLASS_PATHS[stable].rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def write_identity(checkpoint: dict[str, Any], task: SequenceTask) -> None:
    """Record which task and network the checkpoint holds, so ``load_task`` can rebuild both."""
    checkpoint[IDENTITY] = {
        "task": stable_name(type(task)),
        "net_class": stable_name(type(task.net)),
        "net": task.net.describe(),
    }


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded with ``weights_only=True`` (plain tensors and containers, no code)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"Checkpoint {path} does not exist; pass the path of a .ckpt file from a run directory."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(f"Checkpoint {path} cannot be read ({type(err).__name__}: {err}).") from None
    if IDENTITY not in checkpoint:
        raise DataError(f"Checkpoint {path} was not written by rnnexp (it has no {IDENTITY!r} entry).")
    return checkpoint


def newest_file(folders: list[Path] | Path) -> Path | None:
    """The most recently written ``.ckpt`` in ``folders``: each save captures the state of that moment, so the
    newest one is the furthest the run got (a step checkpoint, ``last.ckpt`` or an interrupt checkpoint)."""
    folders = [folders] if isinstance(folders, Path) else folders
    files = [path for folder in folders if folder.is_dir() for path in folder.glob("*.ckpt")]
    return max(files, key=lambda path: path.stat().st_mtime_ns, default=None)


def newest_checkpoint_of(trainer: pl.Trainer) -> Path | None:
    """The newest checkpoint a running trainer's ModelCheckpoint callbacks have written."""
    return newest_file(
        [Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)]
    )


def newest_in_run(run_dir: Path) -> Path | None:
    """A run directory's newest checkpoint: in its ``checkpoints/`` folder, else beside its files."""
    return newest_file(run_dir / CHECKPOINT_FOLDER) or newest_file(run_dir)


def best_file(run_dir: Path) -> Path | None:
    """The best checkpoint of a finished run (``results.json``), else its ``last.ckpt``."""
    results = run_dir / RESULTS_FILE
    best = json.loads(results.read_text()).get("best_ckpt_path") if results.is_file() else None
    for candidate in (best, run_dir / CHECKPOINT_FOLDER / "last.ckpt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def run_checkpoint(path: str | Path, which: Literal["newest", "best"]) -> Path:
    """The one policy for "the checkpoint of this path": a file is itself; a run directory gives its
    ``newest`` checkpoint (where a resumed run continues) or its ``best`` one (what a finished run is judged
    and demonstrated by). Both callers name their choice: ``ckpt_path=<run dir>`` resumes from the newest,
    ``rnnexp.sweeps.demonstrations.load_run(<run dir>)`` shows the best."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{path} does not exist; pass a .ckpt file or a run directory.")
    found = newest_in_run(path) if which == "newest" else best_file(path)
    if found is None:
        raise DataError(
            f"{path} has no checkpoint (no .ckpt file in it or in its {CHECKPOINT_FOLDER}/ folder"
            + (", no best_ckpt_path in its results.json)." if which == "best" else ").")
        )
    return found


def describe_value(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: nested configs and descriptions compared key by key."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def network_differences(stored: dict[str, Any], configured: dict[str, Any]) -> list[str]:
    """Readable ``key: checkpoint vs config`` lines for two network descriptions (``net.describe()``)."""
    old, new = flatten(stored), flatten(configured)
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            label = (
                "model." + key.removeprefix("spec.") if key.startswith("spec.") else f"the network's {key}"
            )
            lines.append(
                f"{label} is {describe_value(old.get(key, '<unset>'))} in the checkpoint but "
                f"{describe_value(new.get(key, '<unset>'))} in the config"
            )
    return lines


def check_fits(path: str | Path, task: SequenceTask) -> dict[str, Any]:
    """Refuse, before training starts, a checkpoint whose task or network differs from the configured one;
    the message names the file and every differing key. Returns the checkpoint."""
    checkpoint = read_checkpoint(path)
    stored = checkpoint[IDENTITY]
    problems = []
    stored_task = LEGACY_NAMES.get(stored.get("task"), stored.get("task"))
    if stored_task != stable_name(type(task)):
        problems.append(
            f"the task is {stored_task} in the checkpoint but {stable_name(type(task))} in the config"
        )
    problems += network_differences(stored.get("net", {}), task.net.describe())
    if not problems:
        expected = {key: tuple(value.shape) for key, value in task.state_dict().items()}
        found = {key: tuple(value.shape) for key, value in checkpoint["state_dict"].items()}
        problems += [
            f"weight {key} has shape {found.get(key, 'none')} in the checkpoint but {expected.get(key, 'none')} "
            "in the config"
            for key in sorted(set(expected) | set(found))
            if expected.get(key) != found.get(key)
        ][:5]
    if problems:
        raise DataError(
            f"Checkpoint {path} does not fit the configured model: {'; '.join(problems)}. Resume with the "
            "configuration it was trained with (config.yaml in its run directory), or leave ckpt_path out to "
            "start a new run."
        )
    return checkpoint


def load_task(path: str | Path, map_location: str | torch.device = "cpu") -> SequenceTask:
    """A ready-to-use task (eval mode) from an rnnexp checkpoint; no optimizer is attached."""
    checkpoint = read_checkpoint(path)
    identity = checkpoint[IDENTITY]
    # A user's cell is named by its class path: checked before anything is imported for it.
    check_checkpoint_cell(identity.get("net", {}).get("spec", {}).get("cell"), path)
    task_class = resolve_class(identity["task"], path)
    net_class = resolve_class(identity.get("net_class", "RecurrentNet"), path)
    net = net_class.from_description(identity["net"])
    task = task_class(net=net, **checkpoint.get("hyper_parameters", {}))
    task.load_state_dict(checkpoint["state_dict"])
    return task.to(map_location).eval()


def load_net_of_kind(
    path: str | Path, net_name: str, kind: str, datamodule: str, map_location: str | torch.device = "cpu"
) -> torch.nn.Module:
    """The network of a checkpoint whose stored net class is ``net_name``; a checkpoint of another kind is
    named and refused, with the ``datamodule`` whose runs make the right kind."""
    identity = read_checkpoint(path)[IDENTITY]
    found = LEGACY_NAMES.get(identity.get("net_class", ""), identity.get("net_class", "RecurrentNet"))
    if found != net_name:
        raise DataError(
            f"Checkpoint {path} holds a {found} (task {LEGACY_NAMES.get(identity['task'], identity['task'])}), "
            f"not a {kind}; pass a checkpoint of a run with datamodule={datamodule}."
        )
    return load_task(path, map_location).net


def load_char_model(path: str | Path, map_location: str | torch.device = "cpu") -> CharRNN:
    """The character model of a text run's checkpoint."""
    return load_net_of_kind(path, "CharRNN", "character language model", "text", map_location)


def load_translation_model(path: str | Path, map_location: str | torch.device = "cpu") -> CharSeq2Seq:
    """The network of a ``datamodule=char_pairs`` run's checkpoint."""
    return load_net_of_kind(
        path, "CharSeq2Seq", "character sequence-to-sequence model", "char_pairs", map_location
    )


def load_token_model(path: str | Path, map_location: str | torch.device = "cpu") -> TokenRecurrentNet:
    """The network of a ``datamodule=text_classes`` or ``datamodule=tagging`` run's checkpoint."""
    return load_net_of_kind(
        path, "TokenRecurrentNet", "text classifier or tagger", "text_classes or tagging", map_location
    )
