from .decode_heads import DLV2AdapterHead, DLV2Head
from .segmentors import DDBEncoderDecoder

__all__ = ['DLV2AdapterHead', 'DLV2Head', 'DDBEncoderDecoder']
