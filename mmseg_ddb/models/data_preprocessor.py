"""Normalisation and padding of a two-domain batch."""
from typing import Any, Dict

from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS


@MODELS.register_module()
class UDADataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` that also takes ``dict(source=..., target=...)``.

    Each domain is processed as mmseg processes one batch (BGR->RGB,
    normalise, pad to the crop); plain batches (validation) pass through the
    parent unchanged.
    """

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        if 'source' in data and 'inputs' not in data:
            return {domain: super(UDADataPreProcessor, self).forward(
                batch, training) for domain, batch in data.items()}
        return super().forward(data, training)
