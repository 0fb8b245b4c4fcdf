"""Train one DDB stage (source-only, ST or CKD) from a config.

A thin wrapper of :mod:`mmseg_ddb.tools.train` (also installed as
``ddb-train``); see there for the options.
"""
from mmseg_ddb.tools.train import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
