"""The product's exceptions: one root, `AssuranceError`, for every problem a user or operator can fix.

The command line catches `AssuranceError` at its root, prints its message as one `error:` line and exits 2;
any other exception is a bug and keeps its traceback. Inside a run, the same errors fail the step that met
them, and the run-failure alert quotes them. A problem in a model version or its data (a column missing,
a model that cannot score) is not an exception at all: it is a finding.

    AssuranceError
    ├── SettingsError        an environment variable or option holds a value the product cannot use
    ├── PolicyError          the policy file cannot be read or has a wrong key, check name or value
    ├── RegistryError        the MLflow registry cannot be reached or does not hold what was asked for
    ├── CursorError          the registry sensor's cursor was not written by this sensor
    ├── EvidenceError        the evidence root cannot be used, or a run folder or bundle is not valid
    ├── DataError            reference or current data cannot be read
    ├── ModelLoadError       a version's model artifacts cannot be loaded by any loader
    ├── InputError           a command's input is not acceptable (a risk acceptance's reason, expiry, id)
    ├── AlertDeliveryError   the webhook did not accept an alert
    └── RunFailedError       a Dagster run the command line started did not complete

`PolicyError` is also a `ValueError`, so pydantic reports one raised inside a policy validator the same
way as its own validation errors.

`describe_error` is the one way an exception becomes a short line in a finding, skip reason or table;
`step_failure` the one way a failed run's step error (Dagster's serialized chain) becomes one.
"""

from __future__ import annotations

from typing import Any


class AssuranceError(Exception):
    """A problem the user or operator can fix; its message says what is wrong and, where it can, how to fix it."""


class SettingsError(AssuranceError):
    """An environment variable or command-line option holds a value the product cannot use."""


class PolicyError(AssuranceError, ValueError):
    """The policy file cannot be read or does not have the expected shape (the key and file are named)."""


class RegistryError(AssuranceError):
    """The registry cannot be reached or does not hold what was asked for."""


class CursorError(AssuranceError):
    """The sensor cursor was not written by this sensor (or by an incompatible version of it)."""


class EvidenceError(AssuranceError):
    """The evidence root cannot be used (not writable, not reachable) or a run folder is not valid."""


class DataError(AssuranceError):
    """Reference or current data cannot be read: nothing at the URI, or a format the product does not read."""


class ModelLoadError(AssuranceError):
    """A model version's artifacts cannot be loaded by its flavor's loader nor by pyfunc."""


class InputError(AssuranceError):
    """A command's input is not acceptable; the message says what to give instead."""


class AlertDeliveryError(AssuranceError):
    """The webhook did not accept the alert; `status` is its HTTP answer, None when it gave none."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def webhook_down(self) -> bool:
        """No answer, a server error, a timeout or throttling: every alert would fail now, not just this one."""
        return self.status is None or self.status >= 500 or self.status in (408, 429)


class RunFailedError(AssuranceError):
    """A Dagster run started by the command line did not complete; the message names the failed step."""


def describe_error(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line: its type and the first line of its message, cut at `limit` characters."""
    text = str(exc).strip()
    first = text.splitlines()[0][:limit] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def root_cause(error: Any) -> Any:
    """The first error in a serialized chain (`cls_name`, `message`, `cause`) that is not a Dagster wrapper.

    Dagster wraps what an asset raised in its own errors; the user's problem is the first cause that is not
    one of them. Duck-typed, so this module does not import Dagster.
    """
    while error.cause is not None and "dagster" in (error.cls_name or "").lower():
        error = error.cause
    return error


def step_failure(step_key: str, error: Any) -> str:
    """`step <key> failed: <last line of the root error>`, the line the CLI prints and failure alerts post."""
    root = root_cause(error) if error is not None else None
    lines = (root.message or "").strip().splitlines() if root is not None else []
    detail = lines[-1] if lines else (root.cls_name if root is not None and root.cls_name else "no message")
    return f"step {step_key} failed: {detail}"


def one_line(exc: BaseException) -> str:
    """The whole message of an error the user can fix, on one line (the CLI prints nothing more)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
