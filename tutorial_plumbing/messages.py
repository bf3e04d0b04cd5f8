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
    _current.update(language=language, catalog=catalog)


def current_language() -> str:
    return _current["language"]


class _LocalNumbers(string.Formatter):
    """str.format, with the digit separators of the current language in formatted numbers."""

    def format_field(self, value, format_spec):
        text = super().format_field(value, format_spec)
        if _current["language"] == "pt-BR" and isinstance(value, numbers.Real):
            if not isinstance(value, bool):
                text = text.translate(str.maketrans(",.", ".,"))
        return text


def say(template: str, **values) -> str:
    """`template` in the reader's language, its {placeholders} filled from `values`.

    The English `template` is the key of its translation (tools/translate.py finds every
    say("...") in the package): write it as a literal, never built from pieces.
    """
    return _LocalNumbers().format(_current["catalog"].gettext(template), **values)


def number(value, format_spec: str = ",") -> str:
    """`value` formatted with `format_spec`, with the digit separators of the current language.

    For numbers outside a message, in tables: number(18610) is 18,610 (en) or 18.610 (pt-BR).
    """
    return _LocalNumbers().format_field(value, format_spec)
