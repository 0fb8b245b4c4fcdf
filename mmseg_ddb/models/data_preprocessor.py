"""Normalisation and padding of a batch, or of a two-domain batch."""
from typing import Any, Dict

from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS


@MODELS.register_module()
class DDBDataPreProcessor(SegDataPreProcessor):
    """mmseg's ``SegDataPreProcessor`` (BGR->RGB, normalise, pad to the crop)
    whose copies of the batch to the device do not block.

    mmseg's preprocessor copies with ``non_blocking=False``: each copy waits
    until the device has finished every kernel queued before it, so every
    step starts with a host-device synchronisation and the GPU idles while
    the host copies the batch and launches the first kernels. With
    ``non_blocking=True`` (the default here) the copy is queued like a
    kernel, and the host runs ahead into the step. The values are the same.

    Args:
        non_blocking (bool): Copy without waiting for the device (``False``:
            mmseg's behaviour).
        **kwargs: The arguments of ``SegDataPreProcessor``.
    """

    def __init__(self, *args, non_blocking: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self._non_blocking = non_blocking


@MODELS.register_module()
class UDADataPreProcessor(DDBDataPreProcessor):
    """``DDBDataPreProcessor`` that also takes ``dict(source=..., target=...)``.

    Each domain is processed as mmseg processes one batch (BGR->RGB,
    normalise, pad to the crop); plain batches (validation) pass through the
    parent unchanged.
    """

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        if 'source' in data and 'inputs' not in data:
            return {domain: super(UDADataPreProcessor, self).forward(
                batch, training) for domain, batch in data.items()}
        return super().forward(data, training)
