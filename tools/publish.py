"""Write the deployable model (one segmentor's weights + config) of a
checkpoint.

A thin wrapper of :mod:`mmseg_ddb.tools.publish` (also installed as
``ddb-publish``); see there for the options.
"""
from mmseg_ddb.tools.publish import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
