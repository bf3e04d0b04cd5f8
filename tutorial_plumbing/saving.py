"""What the series keeps: models saved and loaded back, float32 copies for export, JSON numbers."""

import json
import zipfile
from pathlib import Path

import keras

from .messages import CannotContinue, say


def save_json(data, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2))


def load_json(path):
    return json.loads(Path(path).read_text())


def saved_image_size(path):
    """The image size a .keras file's model takes (its input's height), read from its config.

    Reads only the small config.json inside the file: no weights, no model built. None when
    the file gives no single size.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        shape = config["config"]["layers"][0]["config"]["batch_shape"]
    except (OSError, KeyError, IndexError, TypeError, ValueError, zipfile.BadZipFile):
        return None
    height, width = shape[1:3]
    return height if height == width and isinstance(height, int) else None


def load_model_from(path, made_by: str, image_size=None):
    """Load a model the series saved, or say which notebook makes it.

    With `image_size` (IMG_SIZE), first check that the model takes images of that size.
    """
    path = Path(path)
    if not path.exists():
        raise CannotContinue(
            say(
                "No model at {path}.\nWhat to do: run {notebook} first with the same "
                "ARTIFACTS_DIR. In Colab, put ARTIFACTS_DIR on Google Drive so it survives "
                "between sessions.",
                path=path,
                notebook=made_by,
            )
        )
    saved_size = saved_image_size(path)
    if image_size is not None and saved_size is not None and saved_size != image_size:
        raise CannotContinue(
            say(
                "IMG_SIZE = {size!r}, but the model in {file} takes {saved!r}-pixel images. "
                "What to do: set IMG_SIZE = {saved!r}, as in {notebook}, or run {notebook} "
                "again with IMG_SIZE = {size!r}.",
                size=image_size,
                file=path.name,
                saved=saved_size,
                notebook=made_by,
            )
        )
    # Plain Keras loading, as in your own program: the model needs no code of this series.
    return keras.models.load_model(path)


def float32_copy(model):
    """The same model and weights, computing in float32: what SavedModel and TFLite need.

    Mixed-precision layers (bfloat16 on CPUs, float16 on GPUs) do not convert to TFLite.
    """

    def to_float32(config):
        if isinstance(config, dict):
            if str(config.get("class_name", "")).endswith("DTypePolicy"):
                return "float32"
            return {key: to_float32(value) for key, value in config.items()}
        if isinstance(config, list):
            return [to_float32(value) for value in config]
        return config

    copy = keras.Model.from_config(to_float32(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy
