"""Training: what learns (parameter counts), and the history of every epoch, across restarts."""

import csv
import shutil
from pathlib import Path

import keras
import numpy as np

from .messages import say


def count_parameters(model) -> tuple:
    """(trainable, frozen) parameter counts."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, frozen


def print_trainable_counts(model) -> None:
    trainable, frozen = count_parameters(model)
    layers = [layer.name for layer in model.layers if layer.trainable_weights]
    print(
        say(
            "Trainable parameters: {trainable:,}   frozen: {frozen:,}",
            trainable=trainable,
            frozen=frozen,
        )
    )
    print(say("Layers that will learn: {layers}", layers=", ".join(layers) or say("none")))


def history_dict(history) -> dict:
    """A Keras History as plain lists of floats, ready for JSON."""
    return {name: [float(value) for value in values] for name, values in history.history.items()}


def start_epoch_log(folder):
    """A CSVLogger for fit() that goes on with the log of a training cut off, or starts anew.

    `folder` holds the log and, in folder/backup, what BackupAndRestore saved. Without a backup
    there is nothing to resume, so an old log is dropped.
    """
    folder = Path(folder)
    log = folder / "epochs.csv"
    if not (folder / "backup").exists() and log.exists():
        log.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return keras.callbacks.CSVLogger(str(log), append=True)


def finish_epoch_log(folder) -> dict:
    """Every epoch's numbers, from all pieces of a training (as history_dict); then `folder` goes.

    An epoch logged twice (cut off after the log, before the backup) counts once: its last run.
    """
    folder = Path(folder)
    rows = {}
    with open(folder / "epochs.csv", newline="") as file:
        for row in csv.DictReader(file):
            rows[int(row.pop("epoch"))] = {name: float(value) for name, value in row.items()}
    shutil.rmtree(folder, ignore_errors=True)
    names = rows[min(rows)]
    return {name: [rows[epoch][name] for epoch in sorted(rows)] for name in names}


VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
