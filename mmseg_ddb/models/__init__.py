from .backbones import DINOv2ViT
from .data_preprocessor import DDBDataPreProcessor, UDADataPreProcessor
from .decode_heads import DAFormerHead, DDBSegformerHead, DLV2AdapterHead, DLV2Head
from .segmentors import DDBEncoderDecoder
from .uda import CrossPathDistillation, SelfTraining, UDASegmentor

__all__ = [
    'DINOv2ViT', 'DDBDataPreProcessor', 'UDADataPreProcessor', 'DAFormerHead', 'DDBSegformerHead',
    'DLV2AdapterHead', 'DLV2Head', 'DDBEncoderDecoder',
    'CrossPathDistillation', 'SelfTraining', 'UDASegmentor'
]
