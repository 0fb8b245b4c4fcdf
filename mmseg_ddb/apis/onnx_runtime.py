"""An exported ONNX file run by onnxruntime in place of the PyTorch network:
evaluation with the test protocol (``tools/test.py CONFIG model.onnx``) and
speed next to PyTorch fp32 / bf16 (``tools/export_onnx.py --speed``)."""
import time
from typing import Dict

import torch
from mmseg.models.utils import resize
from torch import nn

from ..errors import ConfigError, ExportError, flat
from ..utils.amp import autocast
from .onnx_export import ExportedSegmentor, random_images, session_of


def is_onnx_file(path: str) -> bool:
    return str(path).lower().endswith('.onnx')


def use_onnxruntime(model: nn.Module, path: str) -> None:
    """Make ``model`` (the config's segmentor) compute its logits with the
    onnxruntime session of ``path``; everything around them (test pipeline,
    whole / slide inference, softmax, resize to the label size, argmax,
    metric) stays PyTorch's. The graph does the normalisation, so the
    model's preprocessor only batches the images."""
    session = session_of(path)
    outputs = [o.name for o in session.get_outputs()]
    if outputs != ['logits']:
        raise ConfigError(f'{path} returns {", ".join(outputs)}, not logits '
                          '(an --argmax export?); export without --argmax '
                          'to evaluate it')
    shape = session.get_inputs()[0].shape
    num_classes = model.decode_head.num_classes
    pre = model.data_preprocessor
    pre.channel_conversion = False  # done inside the graph
    pre._enable_normalize = False

    def encode_decode(inputs, batch_img_metas):
        images = inputs.float().cpu().numpy()
        try:
            logits = session.run(['logits'], {'image': images})[0]
        except Exception as exc:  # onnxruntime's own error types
            fixed = 'x'.join(str(s) for s in shape)
            raise ExportError(
                f'{path} (input {fixed}) cannot run on a batch of shape '
                f'{"x".join(map(str, images.shape))}: {flat(exc)[:200]}. '
                'Export at the test size (--shape H W) or with a dynamic '
                'size') from exc
        if logits.shape[1] != num_classes:
            raise ConfigError(f'{path} has {logits.shape[1]} classes, the '
                              f'config {num_classes}: export it from this '
                              'config')
        logits = torch.from_numpy(logits).to(inputs.device)
        size = tuple(batch_img_metas[0]['img_shape'][:2])
        if tuple(logits.shape[2:]) != size:
            logits = resize(logits, size=size, mode='bilinear',
                            align_corners=model.align_corners)
        return logits

    model.encode_decode = encode_decode


def images_per_second(run, images: torch.Tensor, count: int) -> float:
    """``count`` timed calls of ``run(images)`` after one warm-up call."""
    run(images)
    start = time.perf_counter()
    for _ in range(count):
        run(images)
    return count * images.shape[0] / (time.perf_counter() - start)


@torch.no_grad()
def backend_speeds(model: nn.Module, onnx_path: str, height: int,
                   width: int, count: int = 3,
                   threads: int = 0) -> Dict[str, float]:
    """Images/s at batch 1 of the same network as PyTorch fp32, PyTorch bf16
    (CPU autocast) and onnxruntime (fp32), one after the other in this
    process on the same image."""
    wrapper = ExportedSegmentor(model.eval()).eval()
    image = random_images(1, height, width)
    session = session_of(onnx_path, threads=threads or None)

    def bf16(x):
        with autocast('cpu', True):
            return wrapper(x)

    return {
        'pytorch_fp32': images_per_second(wrapper, image, count),
        'pytorch_bf16': images_per_second(bf16, image, count),
        'onnxruntime_fp32': images_per_second(
            lambda x: session.run(None, {'image': x.numpy()}), image, count),
    }

