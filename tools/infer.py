"""Segment your own images with a DDB checkpoint.

A thin wrapper of :mod:`mmseg_ddb.tools.infer` (also installed as
``ddb-infer``); see there for the options.
"""
from mmseg_ddb.tools.infer import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
