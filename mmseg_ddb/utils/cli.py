"""Uniform error reporting for the command-line tools."""
import sys
from functools import wraps

from ..errors import DDBError, one_line


def user_errors_to_exit(main):
    """Run ``main``; a :class:`DDBError` (also when raised inside a data
    worker) or an unknown registry type prints one ``error:`` line and exits
    with status 2 instead of a traceback."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except DDBError as exc:
            print(f'error: {one_line(exc)}', file=sys.stderr)
            sys.exit(2)
        except KeyError as exc:
            msg = str(exc)
            if 'registry' not in msg:
                raise
            print(f'error: {msg.strip(chr(34)).strip(chr(39)).splitlines()[0]}',
                  file=sys.stderr)
            sys.exit(2)
        except Exception as exc:
            # errors from DataLoader workers come back as a different type
            # whose message carries the original one
            if 'mmseg_ddb.errors' in str(exc) or type(exc).__name__ in (
                    'DataError', 'ConfigError', 'CheckpointError'):
                print(f'error: {one_line(exc)}', file=sys.stderr)
                sys.exit(2)
            raise

    return wrapper
