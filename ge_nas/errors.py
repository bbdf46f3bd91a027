"""Errors with a meaning of their own: bad input (one line, exit 2), and a cost that could not be measured."""

__all__ = ["CostError", "InputError"]


class InputError(ValueError):
    """Bad input (a file, an option, a study name): the message names the problem and the fix."""


class CostError(RuntimeError):
    """A cost could not be measured (the counter failed, or read 0 or NaN).

    A trial fails with it rather than storing a cost that ranks the architecture as free.
    """
