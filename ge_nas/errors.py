"""The error a user can fix: the command line prints it as one line and exits 2."""

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input (a file, an option, a study name): the message names the problem and the fix."""
