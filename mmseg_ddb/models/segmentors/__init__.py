from .encoder_decoder import DDBEncoderDecoder

__all__ = ['DDBEncoderDecoder']
