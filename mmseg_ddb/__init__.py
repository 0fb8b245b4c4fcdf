"""DDB: Deliberated Domain Bridging for domain-adaptive semantic segmentation.

Importing this package applies the compatibility glue for mmcv-lite and
current torch (:mod:`mmseg_ddb.compat`) and registers every dataset, transform,
model, metric and runner of the project in mmseg's registries, so configs can
say ``custom_imports=dict(imports=['mmseg_ddb'])``.
"""
from . import compat

compat.apply()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402,F401
