"""ONNX export of a config's segmentor, checked against onnxruntime.

The exported graph takes what ``cv2.imread`` gives, as float: ``image``
[N, 3, H, W], BGR, 0..255; it does the config's preprocessing (BGR->RGB,
mean/std) and the network, and returns ``logits`` [N, K, H, W] at the input
size (bilinear, as the whole-image test does before its softmax) or, with
``argmax``, ``label`` [N, H, W] (int64 train ids).

Exported with the TorchScript-based exporter of ``torch.onnx`` at
:data:`OPSET`. Shapes the network computes in Python (a transformer's token
grid, a resize to a multiple of the patch size) are traced as constants, so
a dynamic size is kept only where onnxruntime reproduces PyTorch at a second
size and batch (:func:`export_onnx` checks it and falls back to a fixed
size, saying so).
"""
import warnings
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmseg.models.utils import resize
from torch import Tensor, nn

from ..errors import ConfigError, ExportError, flat
from ..utils.fileio import atomic_save

#: the ONNX opset of every export
OPSET = 17
#: default tolerances of the check against onnxruntime: largest absolute
#: logit difference, share of pixels whose label differs
LOGIT_ATOL = 1e-3
LABEL_DIFF_MAX = 0.001
#: what the graph's input is (also written into the file's metadata)
INPUT_FORMAT = 'float32 [N, 3, H, W], BGR channel order, values 0..255'


def require_onnx():
    """``(onnx, onnxruntime)``, or a one-line error saying how to get them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            f'ONNX export and onnxruntime evaluation need the deploy extra '
            f'({exc.name} is not installed): pip install -e ".[deploy]"'
        ) from exc
    return onnx, onnxruntime


class ExportedSegmentor(nn.Module):
    """Image -> logits (or labels) of a segmentor, preprocessing included.

    Args:
        model: A built segmentor (``DDBEncoderDecoder``) in eval mode.
        argmax (bool): Return the train-id map instead of the logits.
    """

    def __init__(self, model: nn.Module, argmax: bool = False):
        super().__init__()
        self.model = model
        self.argmax = argmax
        pre = model.data_preprocessor
        self.bgr_to_rgb = bool(getattr(pre, 'channel_conversion', False))
        self.normalize = bool(getattr(pre, '_enable_normalize', False))
        if self.normalize:
            self.register_buffer('mean', pre.mean.detach().view(1, -1, 1, 1))
            self.register_buffer('std', pre.std.detach().view(1, -1, 1, 1))

    def forward(self, image: Tensor) -> Tensor:
        x = image[:, [2, 1, 0]] if self.bgr_to_rgb else image
        if self.normalize:
            x = (x - self.mean) / self.std
        logits = self.model.decode_head(self.model.extract_feat(x))
        logits = resize(logits, size=x.shape[2:], mode='bilinear',
                        align_corners=self.model.align_corners)
        return logits.argmax(dim=1) if self.argmax else logits


def _axes(batch: bool, size: bool, argmax: bool) -> Dict[str, Dict[int, str]]:
    image, out = {}, {}
    if batch:
        image[0] = out[0] = 'batch'
    if size:
        image.update({2: 'height', 3: 'width'})
        out.update({1: 'height', 2: 'width'} if argmax
                   else {2: 'height', 3: 'width'})
    return {'image': image, 'label' if argmax else 'logits': out}


def _export(wrapper: ExportedSegmentor, path: str, example: Tensor,
            batch: bool, size: bool) -> None:
    """``torch.onnx.export`` to ``path``; an operator the opset lacks (or
    another exporter failure) becomes one :class:`ExportError` line."""
    out_name = 'label' if wrapper.argmax else 'logits'
    axes = {k: v for k, v in _axes(batch, size, wrapper.argmax).items() if v}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # tracer warnings, deprecations
            torch.onnx.export(
                wrapper, (example, ), path, dynamo=False,
                opset_version=OPSET, input_names=['image'],
                output_names=[out_name], dynamic_axes=axes or None,
                do_constant_folding=True)
    except torch.onnx.errors.OnnxExporterError as exc:
        first = flat(str(exc).strip().splitlines()[0])[:300]
        raise ExportError(f'cannot export to ONNX (opset {OPSET}): {first}. '
                          'Replace that operation in the model, or export '
                          'another network') from exc


def random_images(batch: int, height: int, width: int,
                  seed: int = 0) -> Tensor:
    """Images of uniform 0..255 values, [batch, 3, height, width]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width),
                         generator=g).float()


def compare(wrapper: ExportedSegmentor, session, images: Tensor
            ) -> Tuple[float, float]:
    """(largest |logit difference|, share of pixels whose label differs)
    between PyTorch and the onnxruntime ``session`` on ``images`` (for an
    ``argmax`` export the first is 0 and only labels are compared)."""
    with torch.no_grad():
        ref = wrapper(images).numpy()
    out = session.run(None, {'image': images.numpy()})[0]
    if out.shape != ref.shape:
        raise ExportError(f'onnxruntime returned shape {out.shape} for input '
                          f'{tuple(images.shape)}, PyTorch {ref.shape}')
    if wrapper.argmax:
        return 0.0, float((out != ref).mean())
    return (float(np.abs(out - ref).max()),
            float((out.argmax(1) != ref.argmax(1)).mean()))


def session_of(path: str, threads: Optional[int] = None):
    """An onnxruntime CPU session of ``path`` (``threads``: intra-op)."""
    _, ort = require_onnx()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(path, options,
                                    providers=['CPUExecutionProvider'])
    except Exception as exc:  # onnxruntime's own error types
        raise ExportError(f'onnxruntime cannot load {path}: '
                          f'{flat(exc)[:300]}') from exc


def _probe(height: int, width: int) -> Tuple[int, int]:
    """A second image size to check a dynamic export at: both sides 32 / 64
    pixels smaller (or, for small images, larger), so that the area and the
    aspect ratio both differ (a transposed grid of the same token count can
    pass a reshape traced as a constant)."""
    if height > 64 and width > 96:
        return height - 32, width - 64
    return height + 32, width + 64


def _write_metadata(path: str, meta: Dict[str, str]) -> None:
    onnx, _ = require_onnx()
    proto = onnx.load(path)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)


def export_onnx(model: nn.Module, path: str, height: int, width: int,
                argmax: bool = False, dynamic: bool = True,
                atol: float = LOGIT_ATOL,
                label_diff_max: float = LABEL_DIFF_MAX,
                metadata: Optional[Dict[str, str]] = None,
                log=print) -> dict:
    """Export ``model`` to ``path``, check it, and keep it only if
    onnxruntime reproduces PyTorch.

    Checks: ``onnx.checker`` (full), then onnxruntime against PyTorch on
    the same random images, one at ``height`` x ``width``; with ``dynamic``
    also a batch of 2 at another size. A dynamic size (then a dynamic batch)
    that onnxruntime does not reproduce is dropped and the model re-exported
    at the fixed size, with a line saying so. Nothing is left at ``path``
    when any step fails (written to a temporary file, renamed at the end).

    Returns:
        dict: ``dynamic_axes`` (list of names), ``max_logit_diff``,
        ``label_diff`` (the worst over the checked inputs), ``opset``.

    Raises:
        ExportError: an unsupported operator, or differences past ``atol``
            / ``label_diff_max``.
    """
    require_onnx()
    model = model.eval()
    wrapper = ExportedSegmentor(model, argmax=argmax).eval()
    example = random_images(1, height, width)
    probe = random_images(2, *_probe(height, width), seed=1)
    info = {}

    def fails(diff: float, labels: float) -> bool:
        return diff > atol or labels > label_diff_max

    def write(tmp: str) -> None:
        tries = [(True, True), (True, False)] if dynamic else []
        tries.append((False, False))
        for batch, size in tries:
            _export(wrapper, tmp, example, batch, size)
            session = session_of(tmp)
            diff, labels = compare(wrapper, session, example)
            if fails(diff, labels) or not batch:
                break  # a real difference: no other export will do better
            second = probe if size else example.repeat(2, 1, 1, 1)
            try:
                more = compare(wrapper, session, second)
            except Exception:  # onnxruntime's shape errors
                more = (float('inf'), 1.0)
            if not fails(*more):
                diff, labels = max(diff, more[0]), max(labels, more[1])
                break
            log(f'{"dynamic image size" if size else "dynamic batch"}: '
                'not reproduced by onnxruntime (this network computes '
                'shapes in Python, traced as constants); exporting with a '
                f'fixed {"size" if size else "batch of 1"} instead')
        names = (['batch'] if batch else []) + (['height', 'width']
                                               if size else [])
        info.update(dynamic_axes=names, max_logit_diff=diff,
                    label_diff=labels, opset=OPSET)
        if diff > atol or labels > label_diff_max:
            raise ExportError(
                f'{path}: onnxruntime differs from PyTorch past the '
                f'tolerance (max |logit diff| {diff:.3g} vs --atol {atol:g}; '
                f'{labels:.4%} of pixels with another label vs '
                f'--max-label-diff {label_diff_max:g}); nothing written')
        meta = dict(input=INPUT_FORMAT, output='label [N, H, W] int64'
                    if argmax else 'logits [N, K, H, W] float32',
                    opset=OPSET, export_size=f'{height}x{width}',
                    dynamic_axes=','.join(names) or 'none')
        meta.update(metadata or {})
        _write_metadata(tmp, meta)

    atomic_save(path, write)
    return info

