"""The product's exceptions: one root, `AssuranceError`, for every problem a user or operator can fix.

The command line catches `AssuranceError` at its root, prints its message as one `error:` line and exits 2;
anything else is a bug and keeps its traceback.

    AssuranceError
    └── SettingsError       an environment variable or option holds a value the product cannot use
"""

from __future__ import annotations


class AssuranceError(Exception):
    """A problem the user or operator can fix; its message says what is wrong and, where it can, how to fix it."""


class SettingsError(AssuranceError):
    """An environment variable or command-line option holds a value the product cannot use."""
