"""Evaluate a checkpoint (plain, ST, CKD, ours or the original's).

A thin wrapper of :mod:`mmseg_ddb.tools.test` (also installed as
``ddb-test``); see there for the options.
"""
from mmseg_ddb.tools.test import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
