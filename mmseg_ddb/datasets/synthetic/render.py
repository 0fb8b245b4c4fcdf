"""Rendering: the layout's drawing ops painted into a label map and an image in a domain's look
(per-image colours, sky, class textures), then the domain's camera model; ``render_scene``."""
from typing import Tuple

import cv2
import numpy as np

from .geometry import _Op, _Scene
from .layout import _sample_layout
from .palette import _CAMERA, _PALETTES, _ROLES, _SHADOW, _TEXTURE, DOMAINS, IGNORE_INDEX, SKY

_SHIFT = 4  # sub-pixel bits of cv2 drawing coordinates


def _clip_poly(poly: np.ndarray, lo: Tuple[float, float], hi: Tuple[float, float]) -> np.ndarray:
    """Sutherland-Hodgman clipping to a rectangle, to keep cv2's fixed-point maths in range."""
    for axis in (0, 1):
        for bound, keep_above in ((lo[axis], True), (hi[axis], False)):
            out = []
            for i in range(len(poly)):
                a, b = poly[i - 1], poly[i]
                a_in = a[axis] >= bound if keep_above else a[axis] <= bound
                b_in = b[axis] >= bound if keep_above else b[axis] <= bound
                if a_in != b_in:
                    out.append(a + (bound - a[axis]) / (b[axis] - a[axis]) * (b - a))
                if b_in:
                    out.append(b)
            if not out:
                return np.zeros((0, 2))
            poly = np.array(out)
    return poly


def _prepare(op: _Op, height: int, width: int):
    """Fixed-point cv2 arguments of an op, or None if it is off the image. Polygons far off
    the image are clipped first so that cv2's fixed-point maths stays in range."""
    if op.kind == 'circle':
        cx, cy, r, thickness = op.geom
        if not (-r < cx < width + r and -r < cy < height + r) or r > 8 * width:
            return None
        return ((int(round(cx * 16)), int(round(cy * 16))), max(1, int(round(r * 16))), thickness)
    polys = op.geom if op.kind == 'poly' else [op.geom[0]]
    if isinstance(polys, np.ndarray):           # many polygons of one size (windows, slats)
        lo_xy, hi_xy = polys.min(1), polys.max(1)
        on_image = (hi_xy >= 0).all(1) & (lo_xy[:, 0] <= width) & (lo_xy[:, 1] <= height)
        in_range = (lo_xy >= (-width, -height)).all(1) & (hi_xy <= (2 * width, 2 * height)).all(1)
        easy = on_image & in_range
        out = list(np.round(polys[easy] * (1 << _SHIFT)).astype(np.int32))
        polys = polys[on_image & ~in_range]
    else:
        out = []
    lo, hi = (-width, -height), (2 * width, 2 * height)
    for poly in polys:
        (x0, y0), (x1, y1) = poly.min(0), poly.max(0)
        if x1 < 0 or y1 < 0 or x0 > width or y0 > height:
            continue
        if x0 < lo[0] or y0 < lo[1] or x1 > hi[0] or y1 > hi[1]:
            poly = _clip_poly(poly, lo, hi)
            if len(poly) < 3:
                continue
        out.append(np.round(poly * (1 << _SHIFT)).astype(np.int32))
    if not out:
        return None
    return out if op.kind == 'poly' else (out, op.geom[1])


def _draw(kind: str, args, canvas: np.ndarray, value) -> None:
    if kind == 'poly':
        cv2.fillPoly(canvas, args, value, cv2.LINE_8, _SHIFT)
    elif kind == 'circle':
        center, radius, thickness = args
        cv2.circle(canvas, center, radius, value, thickness, cv2.LINE_8, _SHIFT)
    else:
        polys, thickness = args
        cv2.polylines(canvas, polys, False, value, thickness, cv2.LINE_8, _SHIFT)


def _noise(rng, height: int, width: int, cell: int) -> np.ndarray:
    """Unit-ish Gaussian noise smoothed over cells of about `cell` pixels."""
    small = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    if cell == 1:
        return small[:height, :width]
    big = cv2.resize(small, (width + 2 * cell, height + 2 * cell), interpolation=cv2.INTER_CUBIC)
    return big[cell:cell + height, cell:cell + width] / 0.6


def _paint(scene: _Scene, rng: np.random.Generator, domain: str) -> Tuple[np.ndarray, np.ndarray]:
    cam = scene.cam
    h, w = cam.height, cam.width
    d = DOMAINS.index(domain)
    # the generic look: every role gets a random colour per image, so colour says nothing
    random_palette = ({role: [tuple(rng.uniform(15, 240, 3))] for role in _ROLES}
                      if domain == 'generic' else None)
    # per image and role: a brightness, a per-channel tint and an offset (the "mean + jitter"
    # of each class colour; multiplicative so that dark colours stay neutral)
    tint = {role: (rng.uniform(0.85, 1.15) * rng.normal(1.0, 0.06, 3), rng.normal(0, 4, 3))
            for role in _ROLES}
    # how strongly faces turned from the light darken: sunny game vs overcast real
    sun = dict(source=(1.0, 1.4), target=(0.3, 0.7), generic=(0.3, 1.4))[domain]
    sun = rng.uniform(*sun)
    img = np.zeros((h, w, 3), np.float32)
    label = np.full((h, w), IGNORE_INDEX, np.uint8)
    for ops in scene.ops():
        colours = {}
        for op in ops:
            args = _prepare(op, h, w)
            if args is None:
                continue
            if op.label is not None:
                _draw(op.kind, args, label, int(op.label))
            if op.role == _SHADOW:
                mask = np.zeros((h, w), np.uint8)
                _draw(op.kind, args, mask, 1)
                img[mask > 0] *= 0.55 if domain == 'source' else 0.75
                continue
            if op.role not in colours:
                options = (random_palette or {}).get(op.role) or _PALETTES[op.role][d]
                k = rng.integers(len(options))
                base = np.asarray(options[k], float)
                if domain == 'target' and cam.shift != 1.0:   # away from the source colour
                    src = _PALETTES[op.role][0]
                    src = np.asarray(src[k % len(src)], float)
                    base = np.clip(src + cam.shift * (base - src), 0, 255)
                gain, offset = tint[op.role]
                colours[op.role] = base * gain + offset + rng.normal(0, 4, 3)
            shade = 1.0 - (1.0 - op.shade) * sun
            _draw(op.kind, args, img, tuple(float(c) for c in np.clip(colours[op.role] * shade, 0,
                                                                      255)))
    _sky_and_texture(img, label, rng, cam, domain, tint)
    img = _camera_model(img, rng, cam, domain)
    return img, label


def _sky_and_texture(img, label, rng, cam, domain, tint) -> None:
    """Sky gradient and clouds, then multiplicative per-class texture noise (in place)."""
    h, w = label.shape
    if domain == 'generic':
        top, horizon = (np.asarray(rng.uniform(15, 240, 3)) for _ in range(2))
    else:
        d = DOMAINS.index(domain)
        top, horizon = (np.asarray(_PALETTES[r][d][0], float) * tint[r][0] + tint[r][1]
                        for r in ('sky', 'sky_horizon'))
    t = np.clip(np.arange(h, dtype=np.float32) / max(cam.y_h, 1.0), 0, 1)[:, None, None] ** 1.5
    sky = (top * (1 - t) + horizon * t).astype(np.float32)
    clouds = np.clip(_noise(rng, h, w, max(4, w // 16)), 0, None)[..., None]
    cloud_amount = rng.uniform(0.0, 0.35) if domain == 'source' else rng.uniform(0.1, 0.45)
    sky = sky + clouds * cloud_amount * (np.float32(235) - sky)
    is_sky = label == SKY
    img[is_sky] = np.broadcast_to(sky, img.shape)[is_sky]
    amps = np.zeros((256, 3), np.float32)
    for cls, amp in _TEXTURE.items():
        amps[cls] = amp
    fields = np.stack([_noise(rng, h, w, c) for c in (1, 4, 16)], -1)        # (h, w, 3)
    tex = (amps[label] * fields).sum(-1)
    img *= np.clip(1 + tex, 0.3, 2.0)[..., None]


def _camera_model(img, rng, cam, domain) -> np.ndarray:
    """Exposure, colour cast, haze towards the horizon, contrast, blur, vignetting and sensor
    noise, each drawn per image from the domain's ranges (_CAMERA)."""
    h, w = img.shape[:2]
    c = _CAMERA[domain]
    if domain == 'target' and cam.shift != 1.0:   # stronger haze, vignetting and noise
        c = dict(c, **{key: tuple(v * cam.shift for v in c[key])
                       for key in ('haze', 'vignette', 'noise')})
    img = img * rng.uniform(*c['exposure']) * rng.normal(1.0, c['cast'], 3).astype(np.float32)
    rows = np.arange(h, dtype=np.float32)[:, None, None]
    haze = rng.uniform(*c['haze']) * np.exp(-np.abs(rows - cam.y_h) / (0.3 * h))
    img = img * (1 - haze) + np.array([170, 175, 182], np.float32) * haze
    mean, contrast = img.mean(), rng.uniform(*c['contrast'])
    img = (img - mean) * contrast + mean
    sigma = rng.uniform(*c['blur'])
    if sigma > 0.1:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    img = img * (1 - rng.uniform(*c['vignette']) * r2 / 2)[..., None]
    sigma = rng.uniform(*c['noise'])
    img = img + (rng.standard_normal((h, w, 1), np.float32) * sigma
                 + rng.standard_normal((h, w, 3), np.float32) * (sigma / 2))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, height: int, width: int,
                 domain: str, thing_scale: float = 1.0,
                 shift: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Render one street scene.

    The geometry (hence the label map) is drawn from rng first and does not depend on the
    domain: the same generator state gives the same labels in every look.

    Args:
        rng: the random generator (consumed).
        height: image height in pixels.
        width: image width in pixels.
        domain: 'source' (the "game" look), 'target' (the "real" look) or 'generic' (random
            colours per class and image, for the pretraining).
        thing_scale: size factor of thin and small things (poles, signs, traffic lights,
            people, two-wheelers); 1.0 as before it existed.
        shift: strength of the target look (colours moved from the source's, haze,
            vignetting, noise); 1.0 as before it existed, other looks ignore it.

    Returns:
        (img, label): uint8 RGB image (H, W, 3) and uint8 train-id map (H, W), 255 = ignore.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if height < 16 or width < 16:
        raise ValueError(f'image size must be at least 16x16, got {height}x{width}')
    scene = _sample_layout(rng, height, width, thing_scale, shift)
    return _paint(scene, rng, domain)
