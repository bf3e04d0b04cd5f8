"""Parameters checked before any work: one sentence that says what is wrong and what to do."""

import numbers
from pathlib import Path

from .messages import CannotContinue, say

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
    kind = say("a whole number") if whole else say("a number")
    example = f"{name} = {EXAMPLES.get(name, 1)}"
    if isinstance(value, str):
        raise CannotContinue(
            say(
                "{name} is the text {value!r}, not {kind}. "
                "What to do: type a number without quotes, e.g. {example}.",
                name=name,
                value=value,
                kind=kind,
                example=example,
            )
        )
    if not is_number(value) or (whole and not isinstance(value, numbers.Integral)):
        raise CannotContinue(
            say(
                "{name} = {value!r} is not {kind}. What to do: set {name} to {kind}, e.g. "
                "{example}.",
                name=name,
                value=value,
                kind=kind,
                example=example,
            )
        )


def check_weights(value) -> None:
    """WEIGHTS: "imagenet", None or the path of a weights file that exists."""
    if value is None or value == "imagenet":
        return
    if isinstance(value, str) and value.strip().lower() in ("none", "imagenet", ""):
        if value.strip().lower() == "imagenet":
            suggestion = '"imagenet"'
        else:
            suggestion = say("None (no quotes)")
        raise CannotContinue(
            say(
                "WEIGHTS = {value!r} is not understood. What to do: write {suggestion}.",
                value=value,
                suggestion=suggestion,
            )
        )
    if not isinstance(value, str | Path):
        raise CannotContinue(
            say(
                'WEIGHTS = {value!r} is not understood. What to do: use "imagenet", None, '
                "or the path of a VGG16 weights file in quotes.",
                value=value,
            )
        )
    if not Path(value).expanduser().is_file():
        raise CannotContinue(
            say(
                "WEIGHTS: no file at {path}. What to do: check the path, "
                'or use "imagenet" (download ImageNet\'s weights) or None (random weights).',
                path=value,
            )
        )


def check_parameters(**parameters) -> None:
    """Check the parameters a notebook uses before it starts any work.

    Pass them by name, e.g. check_parameters(IMG_SIZE=IMG_SIZE, EPOCHS=EPOCHS). The first
    bad one stops the notebook with one line: what is wrong and what to do. The values you
    typed are shown as you typed them (1e-5, 0.5), in every language.
    """
    for name, value in parameters.items():
        if name in WHOLE_NUMBER_PARAMETERS:
            require_number(name, value, whole=True)
            if name == "IMG_SIZE" and value < VGG16_MIN_SIZE:
                raise CannotContinue(
                    say(
                        "IMG_SIZE = {value!r} is too small: VGG16 needs at least {least!r} "
                        "pixels. What to do: set IMG_SIZE to {least!r} or more "
                        "(VGG16 was trained on 224).",
                        value=value,
                        least=VGG16_MIN_SIZE,
                    )
                )
            if name != "SEED" and value < 1:
                raise CannotContinue(
                    say(
                        "{name} = {value!r} must be at least 1. What to do: set {name} to 1 or "
                        "more.",
                        name=name,
                        value=value,
                    )
                )
        elif name == "LEARNING_RATE":
            require_number(name, value)
            if not value > 0:
                raise CannotContinue(
                    say(
                        "LEARNING_RATE = {value!r} must be above 0. "
                        "What to do: set a small positive number, e.g. 1e-5 for fine-tuning.",
                        value=value,
                    )
                )
        elif name == "THRESHOLD":
            require_number(name, value)
            if not 0 <= value <= 1:
                raise CannotContinue(
                    say(
                        "THRESHOLD = {value!r} is not a probability. "
                        "What to do: set a number from 0 to 1, e.g. 0.5.",
                        value=value,
                    )
                )
        elif name == "WEIGHTS":
            check_weights(value)
        elif name == "IMAGE_PATH":
            if value is not None and not Path(str(value)).expanduser().is_file():
                raise CannotContinue(
                    say(
                        "IMAGE_PATH: no file at {path}. "
                        "What to do: check the path, or set IMAGE_PATH = None "
                        "(Colab then asks for a photo; elsewhere a test image is used).",
                        path=value,
                    )
                )
        else:
            raise TypeError(f"check_parameters does not know the parameter {name}")
