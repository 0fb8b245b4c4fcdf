"""Export a config's segmentor to ONNX, checked against onnxruntime.

A thin wrapper of :mod:`mmseg_ddb.tools.export_onnx` (also installed as
``ddb-export``); see there for the options.
"""
from mmseg_ddb.tools.export_onnx import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
