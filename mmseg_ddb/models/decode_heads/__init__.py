from .dlv2_head import DLV2AdapterHead, DLV2Head

__all__ = ['DLV2AdapterHead', 'DLV2Head']
