"""Messages instead of tracebacks: a problem you can fix, said in one sentence."""


class CannotContinue(Exception):
    """A problem you can fix. Notebooks show its message alone, without a wall of traceback."""

    def _render_traceback_(self):
        # IPython (Jupyter, Colab) calls this instead of printing the traceback.
        return [f"{type(self).__name__}: {self}"]
