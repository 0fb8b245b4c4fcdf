from .daformer_head import DAFormerHead, DDBSegformerHead
from .dlv2_head import DLV2AdapterHead, DLV2Head

__all__ = ['DAFormerHead', 'DDBSegformerHead', 'DLV2AdapterHead', 'DLV2Head']
