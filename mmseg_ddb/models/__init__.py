from .data_preprocessor import DDBDataPreProcessor, UDADataPreProcessor
from .decode_heads import DLV2AdapterHead, DLV2Head
from .segmentors import DDBEncoderDecoder
from .uda import CrossPathDistillation, SelfTraining, UDASegmentor

__all__ = [
    'DDBDataPreProcessor', 'UDADataPreProcessor', 'DLV2AdapterHead', 'DLV2Head', 'DDBEncoderDecoder',
    'CrossPathDistillation', 'SelfTraining', 'UDASegmentor'
]
