"""Parameters checked before any work: one sentence that says what is wrong and what to do."""

import numbers
from pathlib import Path

from .messages import CannotContinue

# VGG16 halves the image five times; below 32 pixels the last pooling has nothing left to pool.
VGG16_MIN_SIZE = 32
WHOLE_NUMBER_PARAMETERS = ("IMG_SIZE", "BATCH_SIZE", "EPOCHS", "FINE_TUNE_EPOCHS", "SEED")
# A typical value of each number, for the messages.
EXAMPLES = {
    "IMG_SIZE": "224",
    "BATCH_SIZE": "32",
    "EPOCHS": "10",
    "FINE_TUNE_EPOCHS": "5",
    "SEED": "42",
    "LEARNING_RATE": "1e-5",
    "THRESHOLD": "0.5",
}


def is_number(value) -> bool:
    """True for int and float (NumPy's too), False for True/False and for text."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_number(name: str, value, whole: bool = False) -> None:
    """Stop unless value is a number (a whole one if `whole`): a form field may give text."""
    kind = "a whole number" if whole else "a number"
    example = f"{name} = {EXAMPLES.get(name, 1)}"
    if isinstance(value, str):
        raise CannotContinue(
            f"{name} is the text {value!r}, not {kind}. "
            f"What to do: type a number without quotes, e.g. {example}."
        )
    if not is_number(value) or (whole and not isinstance(value, numbers.Integral)):
        raise CannotContinue(
            f"{name} = {value!r} is not {kind}. What to do: set {name} to {kind}, e.g. {example}."
        )


def check_weights(value) -> None:
    """WEIGHTS: "imagenet", None or the path of a weights file that exists."""
    if value is None or value == "imagenet":
        return
    if isinstance(value, str) and value.strip().lower() in ("none", "imagenet", ""):
        suggestion = '"imagenet"' if value.strip().lower() == "imagenet" else "None (no quotes)"
        raise CannotContinue(
            f"WEIGHTS = {value!r} is not understood. What to do: write {suggestion}."
        )
    if not isinstance(value, str | Path):
        raise CannotContinue(
            f'WEIGHTS = {value!r} is not understood. What to do: use "imagenet", None, '
            "or the path of a VGG16 weights file in quotes."
        )
    if not Path(value).expanduser().is_file():
        raise CannotContinue(
            f"WEIGHTS: no file at {value}. What to do: check the path, "
            'or use "imagenet" (download ImageNet\'s weights) or None (random weights).'
        )


def check_parameters(**parameters) -> None:
    """Check the parameters a notebook uses before it starts any work.

    Pass them by name, e.g. check_parameters(IMG_SIZE=IMG_SIZE, EPOCHS=EPOCHS). The first
    bad one stops the notebook with one line: what is wrong and what to do.
    """
    for name, value in parameters.items():
        if name in WHOLE_NUMBER_PARAMETERS:
            require_number(name, value, whole=True)
            if name == "IMG_SIZE" and value < VGG16_MIN_SIZE:
                raise CannotContinue(
                    f"IMG_SIZE = {value} is too small: VGG16 needs at least {VGG16_MIN_SIZE} "
                    f"pixels. What to do: set IMG_SIZE to {VGG16_MIN_SIZE} or more "
                    "(VGG16 was trained on 224)."
                )
            if name != "SEED" and value < 1:
                raise CannotContinue(
                    f"{name} = {value} must be at least 1. What to do: set {name} to 1 or more."
                )
        elif name == "LEARNING_RATE":
            require_number(name, value)
            if not value > 0:
                raise CannotContinue(
                    f"LEARNING_RATE = {value} must be above 0. "
                    "What to do: set a small positive number, e.g. 1e-5 for fine-tuning."
                )
        elif name == "THRESHOLD":
            require_number(name, value)
            if not 0 <= value <= 1:
                raise CannotContinue(
                    f"THRESHOLD = {value} is not a probability. "
                    "What to do: set a number from 0 to 1, e.g. 0.5."
                )
        elif name == "WEIGHTS":
            check_weights(value)
        elif name == "IMAGE_PATH":
            if value is not None and not Path(str(value)).expanduser().is_file():
                raise CannotContinue(
                    f"IMAGE_PATH: no file at {value}. "
                    "What to do: check the path, or set IMAGE_PATH = None "
                    "(Colab then asks for a photo; elsewhere a test image is used)."
                )
        else:
            raise TypeError(f"check_parameters does not know the parameter {name}")
