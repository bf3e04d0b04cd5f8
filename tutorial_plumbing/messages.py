"""What the helpers say to the reader: in the reader's language, a problem in one sentence.

English is the source. `use_language("pt-BR")`, the one call a Portuguese notebook makes, turns
every message of the package into Brazilian Portuguese: the catalog in locale/ is compiled from
translations/pt-BR/plumbing.po by tools/translate.py. Numbers follow the language too:
23,262 and 0.54 in English, 23.262 and 0,54 in Portuguese.
"""

import gettext
import numbers
import string
from pathlib import Path

LOCALES = Path(__file__).resolve().parent / "locale"
DOMAIN = "tutorial_plumbing"
LANGUAGES = ("en", "pt-BR")
_current = {"language": "en", "catalog": gettext.NullTranslations()}


class CannotContinue(Exception):
    """A problem you can fix. Notebooks show its message alone, without a wall of traceback."""

    def _render_traceback_(self):
        # IPython (Jupyter, Colab) calls this instead of printing the traceback.
        return [f"{type(self).__name__}: {self}"]


def use_language(language: str) -> None:
    """Show the helpers' messages, and the numbers in them, in `language`: "en" or "pt-BR"."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r}: the helpers speak {', '.join(LANGUAGES)}")
    catalog = gettext.NullTranslations()
    if language != "en":
        catalog = gettext.translation(DOMAIN, LOCALES, [language.replace("-", "_")])
        _localize_plot_numbers()
    _current.update(language=language, catalog=catalog)


def _localize_plot_numbers() -> None:
    """Matplotlib's axis numbers (0.5, 1,000) in the current language, for every plot.

    Matplotlib can only follow the operating system's locale for this, which Colab does not
    have for Portuguese; so its tick formatter passes its text through localized().
    """
    from matplotlib import ticker

    formatter = ticker.ScalarFormatter
    if getattr(formatter, "_localized", False):
        return
    plain_call = formatter.__call__  # format_ticks calls it for every tick
    formatter.__call__ = lambda self, x, pos=None: localized(plain_call(self, x, pos))
    formatter._localized = True


def current_language() -> str:
    return _current["language"]


def localized(text: str) -> str:
    """A number already formatted the English way, written the current language's way."""
    if _current["language"] == "pt-BR":
        return text.translate(str.maketrans(",.", ".,"))
    return text


class _LocalNumbers(string.Formatter):
    """str.format, with the digit separators of the current language in formatted numbers."""

    def format_field(self, value, format_spec):
        text = super().format_field(value, format_spec)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return localized(text)
        return text


def say(template: str, **values) -> str:
    """`template` in the reader's language, its {placeholders} filled from `values`.

    The English `template` is the key of its translation (tools/translate.py finds every
    say("...") in the package): write it as a literal, never built from pieces.
    """
    return _LocalNumbers().format(_current["catalog"].gettext(template), **values)


def split_name(split: str) -> str:
    """What the reader calls a split, in their language; the keys stay train/validation/test."""
    names = {"train": say("train"), "validation": say("validation"), "test": say("test")}
    return names.get(split, split)


class num:  # noqa: N801  (used like a function, in f-strings)
    """A number that an f-string writes the reader's way: f"{num(0.543):.1%}" is 54.3% in
    English and 54,3% in Portuguese; f"{num(23262):,}" is 23,262 or 23.262.

    The format spec is Python's own, so a notebook keeps its f-strings; only the digit
    separators follow use_language().
    """

    def __init__(self, value):
        self.value = value

    def __format__(self, format_spec):
        return localized(format(self.value, format_spec))

    def __str__(self):
        return format(self, "")
