from .encoder_decoder import DDBEncoderDecoder
from .tta import DDBTTAModel

__all__ = ['DDBEncoderDecoder', 'DDBTTAModel']
