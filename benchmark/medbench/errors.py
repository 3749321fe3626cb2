"""The errors medbench raises on purpose.

Every error a user can cause (bad data, bad predictions, a broken submission) is a
:class:`MedbenchError`; the CLI turns it into one red line and exit code 1. Anything else
escaping medbench is a bug and is reported as one.
"""

from __future__ import annotations


class MedbenchError(Exception):
    """Base class: an error with a message meant for the user."""


class UnknownNameError(MedbenchError, KeyError):
    """A name (task, submission template, ...) that no registry knows."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(MedbenchError):
    """A registry refused a second entry under a name it already holds."""


class DataError(MedbenchError):
    """Raw or prepared data is missing, corrupt or inconsistent."""


class DataNotFoundError(DataError):
    """No source of a task's data could be found."""


class ChecksumError(DataError):
    """A file's SHA-256 differs from the one recorded."""


class SplitError(DataError):
    """A committed split file is missing, changed or inconsistent."""


class PredictionError(MedbenchError):
    """Predictions that cannot be scored (wrong ids, shape, values)."""


class SubmissionError(MedbenchError):
    """A submission folder that cannot be loaded or breaks the contract."""


class RecordError(MedbenchError):
    """A result record that is unreadable, invalid or tampered with."""


class ExportError(MedbenchError):
    """A record that cannot be written in the format asked for (or where it was asked)."""


class TrackingError(MedbenchError):
    """The experiment tracker (MLflow) is not installed, cannot be reached or refused the data."""


class Interrupted(MedbenchError):
    """A stop was requested (SIGINT, SIGTERM, SIGHUP): runs were killed, no record written."""


def describe_os_error(exc: OSError) -> str:
    """``Not a directory: '/x/runs/.staging'``: what failed and on which path, on one line."""
    what = exc.strerror or type(exc).__name__
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    return f"{what}: {' -> '.join(repr(str(n)) for n in names)}" if names else f"{what}: {exc}"
