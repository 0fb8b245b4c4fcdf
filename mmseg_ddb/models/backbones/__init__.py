from .dinov2_vit import DINOv2ViT

__all__ = ['DINOv2ViT']
