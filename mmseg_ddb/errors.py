"""Errors a user can cause, raised early with a message that says what to do.

The command-line tools catch :class:`DDBError` and print its message on one
line instead of a traceback from inside the runner.
"""


class DDBError(Exception):
    """Base class of every error caused by user input (data, config, files)."""


class DataError(DDBError, ValueError):
    """A dataset on disk is missing, incomplete or malformed."""


class ConfigError(DDBError, ValueError):
    """A config file, a config key or a command-line option is wrong."""


class CheckpointError(DDBError, ValueError):
    """A checkpoint or prototype file does not fit the model."""


class ExportError(DDBError, RuntimeError):
    """A model cannot be exported (an operator the format lacks), or its
    export does not compute what the PyTorch model computes."""


class ConversionError(DataError):
    """Bad input of a dataset converter (``tools/convert_datasets``); the
    message names the file and what to do."""


def flat(obj) -> str:
    """``str(obj)`` with every run of whitespace (newlines included) made one
    space: a multi-line library message that must fit on one ``error:``
    line."""
    return ' '.join(str(obj).split())


def one_line(exc: BaseException) -> str:
    """The user-facing line of an error: its message made one line
    (:func:`flat`).

    Errors raised in a DataLoader worker come back wrapped, with the worker's
    traceback inside the message; then the last non-empty line is the
    original message.
    """
    text = str(exc)
    if 'Traceback (most recent call last)' in text:
        lines = [line for line in text.splitlines() if line.strip()]
        msg = lines[-1]
    else:
        msg = flat(text)
    for prefix in ('mmseg_ddb.errors.', ):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    for name in ('DataError: ', 'ConfigError: ', 'CheckpointError: ',
                 'DDBError: '):
        if msg.startswith(name):
            msg = msg[len(name):]
    return msg or exc.__class__.__name__
