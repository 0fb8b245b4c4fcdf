"""The built-in synthetic domain shift: procedural street scenes in two looks.

With no dataset on disk the project still runs its main job (DESIGN.md section 5): this module
renders seeded street-like scenes with the 19 Cityscapes train-id classes in a *source* look
(a saturated, flat, brightly lit "game") and a *target* look (a different palette per class,
overcast lighting, haze, blur, vignetting and camera noise: "real"). Both domains draw their
geometry from the same distribution, so a model trained on the source loses on the target only
because of appearance, which is the gap that domain adaptation closes.

How a scene is made:

1. ``_sample_layout`` places a pinhole camera and a world of metres (road, sidewalks, buildings
   with windows, trees, poles with signs and traffic lights, fences, walls, vehicles, people,
   riders) and projects it into a list of drawing ops in painter's order. It uses the random
   generator only for geometry, so the labels depend on the geometry alone: the same generator
   state gives the same label map in both domains.
2. ``_paint`` draws the ops into the label map and into the image with colours drawn per image
   from the domain's palette (mean + jitter) and per object, then adds class textures (foliage
   noise, grass, asphalt, clouds) and the domain's camera model.

``generate_synthetic`` writes the two domains to disk in the GTA5 (converted) and Cityscapes
layouts, atomically and under a file lock; ``python -m mmseg_ddb.datasets.synthetic ROOT`` does
the same from the command line and can write a preview grid.

This module imports neither mmseg nor mmengine, so that tools and tests can use it on its own.
"""
import argparse
import fcntl
import glob
import json
import os
import shutil
from collections import namedtuple
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

GENERATOR_VERSION = 1
IGNORE_INDEX = 255
DOMAINS = ('source', 'target')

CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
           'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck',
           'bus', 'train', 'motorcycle', 'bicycle')
# The Cityscapes colours of the 19 train ids (as in mmseg's CityscapesDataset).
PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
           (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
           (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
           (0, 80, 100), (0, 0, 230), (119, 11, 32))
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY, PERSON,
 RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)

SOURCE_DIRS = dict(img_dir='gta/images', seg_map_dir='gta/labels', img_suffix='.png',
                   seg_map_suffix='_labelTrainIds.png')
TARGET_DIRS = dict(data_root='cityscapes', img_dir='leftImg8bit', seg_map_dir='gtFine',
                   img_suffix='_leftImg8bit.png', seg_map_suffix='_gtFine_labelTrainIds.png')
CITIES = dict(train='synthtown', val='synthville')
META_FILE = 'synthetic_meta.json'
#: held-out source-look images (``gta_val/gta/...``), to measure the domain gap
SOURCE_VAL_ROOT = 'gta_val'

# --------------------------------------------------------------------------------------------
# Appearance. Each role is a list of colour options per domain; an object picks one option and
# every image shifts each role by its own jitter, so colour alone never names the class. The
# target palette moves every class to another hue/saturation/brightness (the domain shift);
# within a domain the classes stay distinguishable.
# --------------------------------------------------------------------------------------------
_PALETTES = {
    #               source ("game": saturated, bright)           target ("real": muted, shifted)
    'sky':          ([(40, 120, 235)],                            [(75, 135, 210)]),
    'sky_horizon':  ([(150, 205, 250)],                           [(180, 200, 220)]),
    'ground':       ([(120, 190, 60)],                            [(140, 160, 80)]),
    'road':         ([(80, 82, 98)],                              [(68, 68, 70)]),
    'lane':         ([(245, 245, 245)],                           [(215, 215, 200)]),
    'sidewalk':     ([(210, 178, 150)],                           [(165, 162, 155)]),
    'curb':         ([(235, 225, 215)],                           [(190, 188, 185)]),
    'terrain':      ([(125, 195, 60)],                            [(145, 165, 80)]),
    'building':     ([(190, 95, 60), (222, 190, 120), (150, 150, 165), (232, 222, 200),
                      (130, 85, 75)],
                     [(150, 100, 85), (185, 170, 140), (125, 128, 135), (200, 195, 185),
                      (110, 90, 85)]),
    'window':       ([(40, 75, 130), (70, 110, 170)],             [(55, 65, 80), (150, 150, 120)]),
    'wall':         ([(205, 200, 110)],                           [(165, 155, 150)]),
    'fence':        ([(160, 105, 50)],                            [(115, 110, 90)]),
    'fence_slat':   ([(110, 70, 30)],                             [(80, 78, 65)]),
    'pole':         ([(105, 108, 125)],                           [(95, 90, 85)]),
    'sign':         ([(225, 30, 30), (30, 80, 225), (250, 210, 0)],
                     [(185, 60, 55), (55, 95, 170), (210, 200, 190)]),
    'tlight':       ([(35, 35, 35)],                              [(55, 58, 50)]),
    'lamp_red':     ([(255, 40, 40)],                             [(210, 90, 70)]),
    'lamp_amber':   ([(255, 210, 0)],                             [(210, 180, 90)]),
    'lamp_green':   ([(40, 255, 90)],                             [(100, 190, 140)]),
    'vegetation':   ([(30, 150, 40)],                             [(55, 125, 45)]),
    'trunk':        ([(105, 70, 40)],                             [(80, 68, 55)]),
    'car':          ([(215, 30, 30), (30, 60, 205), (240, 240, 240), (240, 200, 20),
                      (25, 25, 30), (40, 165, 60)],
                     [(150, 50, 50), (60, 75, 120), (200, 200, 200), (150, 150, 155),
                      (35, 35, 40), (95, 100, 90)]),
    'car_window':   ([(30, 45, 70)],                              [(30, 32, 36)]),
    'wheel':        ([(20, 20, 20)],                              [(24, 24, 24)]),
    'taillight':    ([(255, 30, 30)],                             [(170, 45, 45)]),
    'truck':        ([(235, 120, 20), (205, 205, 210)],          [(175, 120, 70), (170, 170, 165)]),
    'bus':          ([(245, 190, 20), (225, 40, 40)],            [(70, 120, 125), (200, 198, 188)]),
    'train':        ([(230, 230, 245)],                           [(150, 160, 140)]),
    'person_top':   ([(225, 50, 50), (40, 90, 225), (250, 200, 40), (240, 240, 240),
                      (60, 185, 80)],
                     [(60, 60, 70), (140, 65, 65), (80, 95, 125), (180, 170, 150),
                      (55, 80, 65)]),
    'person_legs':  ([(40, 50, 130), (30, 30, 30), (125, 90, 60)],
                     [(35, 35, 45), (80, 80, 88), (55, 65, 100)]),
    'skin':         ([(235, 180, 140)],                           [(195, 160, 135)]),
    'bicycle':      ([(40, 205, 225), (230, 60, 165)],            [(60, 120, 130), (130, 50, 60)]),
    'motorcycle':   ([(155, 30, 175), (30, 30, 30)],              [(90, 60, 100), (40, 40, 45)]),
    'void':         ([(130, 120, 110)],                           [(108, 110, 100)]),
    'ego':          ([(40, 40, 46)],                              [(26, 26, 28)]),
}
_ROLES = tuple(_PALETTES)
_SHADOW = 'shadow'  # a role that darkens what is below instead of painting a colour

# Multiplicative texture amplitudes per class: (1-px noise, 4-px noise, 16-px noise).
_TEXTURE = {ROAD: (0.05, 0.03, 0.03), SIDEWALK: (0.07, 0.05, 0.04), BUILDING: (0.03, 0.03, 0.05),
            WALL: (0.05, 0.06, 0.05), FENCE: (0.05, 0.02, 0.02), POLE: (0.02, 0.0, 0.0),
            VEGETATION: (0.24, 0.2, 0.08), TERRAIN: (0.1, 0.16, 0.1), SKY: (0.0, 0.015, 0.05),
            PERSON: (0.03, 0.02, 0.0), RIDER: (0.03, 0.02, 0.0), CAR: (0.02, 0.0, 0.0),
            TRUCK: (0.02, 0.01, 0.0), BUS: (0.02, 0.01, 0.0), TRAIN: (0.02, 0.01, 0.0)}

# The camera of each domain: ranges drawn per image. The game is bright, crisp and clean; the
# real camera is darker and hazier, has less contrast, blurs, vignettes and is noisy.
_CAMERA = {
    'source': dict(exposure=(0.85, 1.2), cast=0.02, haze=(0.0, 0.05), contrast=(0.9, 1.1),
                   blur=(0.0, 0.0), vignette=(0.0, 0.0), noise=(0.5, 1.5)),
    'target': dict(exposure=(0.8, 1.05), cast=0.04, haze=(0.05, 0.25), contrast=(0.8, 0.95),
                   blur=(0.4, 0.8), vignette=(0.1, 0.25), noise=(1.5, 4.0)),
}

_SHIFT = 4  # sub-pixel bits of cv2 drawing coordinates

# One drawing op: kind is 'poly' (geom: a list of (N, 2) arrays or one (M, N, 2) array),
# 'circle' (cx, cy, r, thickness) or 'lines' ((N, 2) array, thickness); label None leaves the
# label map alone (a detail such as a window); shade in (0, 1] is a face's share of direct light.
_Op = namedtuple('_Op', 'kind geom label role shade')


def _op(kind, geom, label, role, shade=1.0) -> _Op:
    return _Op(kind, geom, label, role, shade)


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------
class _Camera:
    """A level pinhole camera: x right, y up, z forward (metres); image rows grow downwards."""

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        self.height, self.width = height, width
        self.f = width * rng.uniform(0.55, 0.7)          # focal length in pixels
        self.cam_h = rng.uniform(1.3, 1.7)               # camera height above the road
        self.y_h = height * rng.uniform(0.36, 0.48)      # horizon row
        self.x_v = width * (0.5 + rng.uniform(-0.06, 0.06))  # vanishing point of the road
        self.z_near = self.f * self.cam_h / (height - self.y_h)  # ground depth at the bottom row

    def project(self, x, y, z) -> np.ndarray:
        """World points (broadcastable arrays, metres) -> (..., 2) pixel coordinates."""
        x, y, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float),
                                      np.asarray(z, float))
        return np.stack([self.x_v + self.f * x / z, self.y_h + self.f * (self.cam_h - y) / z], -1)

    def scale(self, z: float) -> float:
        """Pixels per metre at depth z."""
        return self.f / z


class _Scene:
    """Objects (lists of ops) drawn in painter's order: by layer, then far to near."""

    # layers, back to front
    SKY, GROUND, FAR, SIDE, PARK, SIDE_FRONT, STREET, EGO = range(8)

    def __init__(self, cam: _Camera):
        self.cam = cam
        self._objects = []

    def add(self, layer: int, depth: float, ops: List[_Op]) -> None:
        if ops:
            self._objects.append((layer, -depth, len(self._objects), ops))

    def ops(self) -> Iterator[List[_Op]]:
        for *_, ops in sorted(self._objects, key=lambda o: o[:3]):
            yield ops


class _Street:
    """The sampled street plan in metres: road edges, sidewalks, side kinds, crossroad."""

    def __init__(self, rng: np.random.Generator, cam: _Camera):
        self.edge = {-1: -rng.uniform(2.5, 6.0), 1: rng.uniform(3.0, 8.0)}
        self.sidewalk = {s: rng.uniform(1.5, 4.0) if rng.random() < 0.9 else 0.0 for s in (-1, 1)}
        self.strip = {s: rng.uniform(0.5, 4.0) if rng.random() < 0.4 else 0.0 for s in (-1, 1)}
        self.kind = {s: rng.choice(['buildings', 'park', 'open'], p=[0.68, 0.22, 0.1])
                     for s in (-1, 1)}
        self.outer = {s: self.edge[s] + s * (self.sidewalk[s] + self.strip[s]) for s in (-1, 1)}
        self.z0 = 0.8 * cam.z_near                        # just below the bottom row
        self.z_end = rng.uniform(70, 180) if rng.random() < 0.6 else 1000.0
        self.cross = None
        if rng.random() < 0.3:
            zc = rng.uniform(12, 45)
            self.cross = (zc, zc + rng.uniform(8, 14))

    def free(self, z0: float, z1: float) -> bool:
        """True if the depth range [z0, z1] is clear of the crossroad."""
        return self.cross is None or z1 < self.cross[0] or z0 > self.cross[1]

    def segments(self, z0: float, z1: float) -> List[Tuple[float, float]]:
        """[z0, z1] minus the crossroad."""
        if self.free(z0, z1):
            return [(z0, z1)]
        c0, c1 = self.cross
        return [(a, b) for a, b in ((z0, min(z1, c0)), (max(z0, c1), z1)) if b > a]


def _vquad(cam, x0, x1, y0, y1, z0, z1) -> np.ndarray:
    """A vertical rectangle from (x0, z0) to (x1, z1) between heights y0 and y1."""
    f, xv, yh, ch = cam.f, cam.x_v, cam.y_h, cam.cam_h       # scalar maths: called very often
    a, b = f / z0, f / z1
    return np.array([[xv + a * x0, yh + a * (ch - y0)], [xv + b * x1, yh + b * (ch - y0)],
                     [xv + b * x1, yh + b * (ch - y1)], [xv + a * x0, yh + a * (ch - y1)]])


def _gquad(cam, x0, x1, z0, z1) -> np.ndarray:
    """A ground rectangle."""
    f, xv, yh, ch = cam.f, cam.x_v, cam.y_h, cam.cam_h
    a, b = f / z0, f / z1
    return np.array([[xv + a * x0, yh + a * ch], [xv + a * x1, yh + a * ch],
                     [xv + b * x1, yh + b * ch], [xv + b * x0, yh + b * ch]])


def _box(cam, x0, x1, y0, y1, z0, z1) -> np.ndarray:
    """Silhouette of an axis-aligned box: the hull of its 8 projected corners."""
    xs, ys, zs = np.meshgrid([x0, x1], [y0, y1], [z0, z1], indexing='ij')
    pts = cam.project(xs.ravel(), ys.ravel(), zs.ravel()).astype(np.float32)
    return cv2.convexHull(pts)[:, 0, :].astype(float)


def _disc(cam, x, y, z, r, label, role, shade=1.0, ring=0.0) -> _Op:
    cx, cy = cam.project(x, y, z)
    thickness = -1 if ring <= 0 else max(1, int(round(ring * cam.scale(z))))
    return _op('circle', (cx, cy, r * cam.scale(z), thickness), label, role, shade)


def _windows(rng, cam, origin, u_dir, u_len, height) -> Optional[_Op]:
    """A grid of windows on a vertical wall starting at origin, running u_len along u_dir."""
    floor_h, spacing = rng.uniform(2.8, 3.6), rng.uniform(2.2, 4.0)
    win_w, win_h = spacing * rng.uniform(0.35, 0.65), floor_h * rng.uniform(0.4, 0.6)
    n_floors, n_cols = int((height - 1.5) // floor_h), int(u_len // spacing)
    if n_floors < 1 or n_cols < 1:
        return None
    u0 = (u_len - n_cols * spacing) / 2 + (np.arange(n_cols) + 0.5) * spacing - win_w / 2
    v0 = 1.0 + np.arange(n_floors) * floor_h + (floor_h - win_h) * 0.6
    u, v = (a.ravel() for a in np.meshgrid(u0, v0))
    du = np.stack([u, u + win_w, u + win_w, u], 1)                        # (n, 4)
    dv = np.stack([v, v, v + win_h, v + win_h], 1)
    pts3 = np.asarray(origin)[None, None] + du[..., None] * np.asarray(u_dir)[None, None]
    pts3[..., 1] += dv
    quads = cam.project(pts3[..., 0], pts3[..., 1], pts3[..., 2])       # (n, 4, 2)
    x, y = quads[..., 0], quads[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y).sum(1))
    quads = quads[area >= 1.0]
    return _op('poly', quads, None, 'window') if len(quads) else None


def _add_ground(scene: _Scene, rng, st: _Street) -> None:
    cam, z0, far = scene.cam, st.z0, st.z_end
    ops = [_op('poly', [cam.project([-1e3, 1e3, 1e3, -1e3], 0, [2e3, 2e3, z0, z0])], TERRAIN,
               'ground')]
    for s in (-1, 1):
        for a, b in st.segments(z0, far):
            if st.sidewalk[s]:
                ops.append(_op('poly', [_gquad(cam, st.edge[s] + s * st.sidewalk[s], st.edge[s],
                                               a, b)], SIDEWALK, 'sidewalk'))
                ops.append(_op('poly', [_gquad(cam, st.edge[s] + s * 0.2, st.edge[s], a, b)],
                               None, 'curb'))
            if st.strip[s]:
                x = st.edge[s] + s * st.sidewalk[s]
                ops.append(_op('poly', [_gquad(cam, x, x + s * st.strip[s], a, b)], TERRAIN,
                               'terrain'))
    ops.append(_op('poly', [_gquad(cam, st.edge[-1], st.edge[1], z0, far)], ROAD, 'road'))
    if st.cross:
        ops.append(_op('poly', [_gquad(cam, -60, 60, *st.cross)], ROAD, 'road'))
    ops += _road_markings(rng, cam, st)
    scene.add(_Scene.GROUND, 0.0, ops)


def _road_markings(rng, cam, st: _Street) -> List[_Op]:
    """Dashed lane lines and, before a crossroad, a zebra crossing (all still road)."""
    width = st.edge[1] - st.edge[-1]
    lines = []
    if width > 5.5:
        x = st.edge[-1] + width * rng.uniform(0.4, 0.6)
        period, dash = rng.uniform(8, 12), rng.uniform(2.5, 4)
        start = st.z0 + rng.uniform(0, period)
        for z in np.arange(start, min(st.z_end, 150), period):
            if st.free(z, z + dash):
                lines.append(_gquad(cam, x - 0.08, x + 0.08, z, z + dash))
    if st.cross:
        z1 = st.cross[0] - 0.5
        for x in np.arange(st.edge[-1] + 0.5, st.edge[1] - 0.5, 1.0):
            lines.append(_gquad(cam, x, x + 0.5, z1 - 3.5, z1))
    return [_op('poly', np.array(lines), None, 'lane')] if lines else []


def _add_building(scene, rng, s, x_face, z0, z1, height, layer=_Scene.SIDE):
    """A block whose street facade lies at x_face from z0 to z1 (drawn by its far end)."""
    cam, depth = scene.cam, 20.0
    x_back = x_face + s * depth
    ops = [_op('poly', [_vquad(cam, x_face, x_back, 0, height, z0, z0)], BUILDING, 'building',
               0.9),
           _op('poly', [_vquad(cam, x_face, x_face, 0, height, z0, z1)], BUILDING, 'building',
               0.7 if s < 0 else 1.0)]
    for origin, u_dir, u_len in (((x_face, 0, z0), (s, 0, 0), depth),
                                 ((x_face, 0, z0), (0, 0, 1), z1 - z0)):
        win = _windows(rng, cam, origin, u_dir, u_len, height)
        if win:
            ops.append(win)
    scene.add(layer, z1, ops)


def _add_far_row(scene: _Scene, rng, st: _Street) -> None:
    """Front-facing buildings and trees closing the street, or a distant skyline."""
    cam = scene.cam
    z = st.z_end if st.z_end < 1000 else 400.0
    x = -150.0
    while x < 150:
        w = rng.uniform(8, 25)
        h = rng.uniform(5, 30) if z < 400 else rng.uniform(3, 40)
        if rng.random() < 0.25:
            ops = [_disc(cam, x + w / 2 + dx, h * 0.6 + dy, z, w * 0.35, VEGETATION,
                         'vegetation', rng.uniform(0.8, 1.0))
                   for dx, dy in rng.normal(0, w * 0.15, (4, 2))]
        else:
            ops = [_op('poly', [_vquad(cam, x, x + w, 0, h, z, z)], BUILDING, 'building', 0.9)]
            win = _windows(rng, cam, (x, 0, z), (1, 0, 0), w, h)
            if win:
                ops.append(win)
        scene.add(_Scene.FAR, z, ops)
        x += w


def _tree(cam, rng, x, z, size) -> List[_Op]:
    """A trunk and a blobby crown of overlapping discs (all vegetation)."""
    crown_y = size * rng.uniform(1.6, 2.2)
    ops = [_op('poly', [_vquad(cam, x - 0.15, x + 0.15, 0, crown_y, z, z)], VEGETATION, 'trunk')]
    for dx, dy in rng.normal(0, size * 0.45, (int(rng.integers(4, 8)), 2)):
        ops.append(_disc(cam, x + dx, crown_y + 0.6 * dy + size * 0.3, z,
                         size * rng.uniform(0.55, 0.85), VEGETATION, 'vegetation',
                         rng.uniform(0.75, 1.0)))
    return ops


def _add_side(scene: _Scene, rng, st: _Street, s: int) -> None:
    """Buildings, a park or open land beyond the sidewalk of side s (-1 left, +1 right)."""
    cam, kind, outer = scene.cam, st.kind[s], st.outer[s]
    if kind == 'buildings':
        z = st.z0 * 0.6
        while z < min(st.z_end, 220):
            length = rng.uniform(8, 30)
            if not st.free(z, z + length):
                z = st.cross[1] + rng.uniform(0.5, 3)
                continue
            if rng.random() < 0.12:                        # a gap, sometimes with a tree
                gap = rng.uniform(4, 12)
                if rng.random() < 0.6:
                    scene.add(_Scene.PARK, z, _tree(cam, rng, outer + s * 0.5, z + gap / 2,
                                                    rng.uniform(2, 3.5)))
                z += gap
                continue
            height = rng.uniform(6, 22) * (1.8 if rng.random() < 0.15 else 1.0)
            _add_building(scene, rng, s, outer + s * rng.uniform(0, 1.5), z, z + length, height)
            z += length
    else:
        n_trees = int(rng.integers(4, 14)) if kind == 'park' else int(rng.integers(0, 4))
        for _ in range(n_trees):
            z = rng.uniform(st.z0, 90)
            x = outer + s * rng.uniform(1, 12)
            if st.free(z - 3, z + 3):
                scene.add(_Scene.PARK, z, _tree(cam, rng, x, z, rng.uniform(1.8, 3.5)))
    _add_fences(scene, rng, st, s)


def _add_fences(scene: _Scene, rng, st: _Street, s: int) -> None:
    """Fences (slatted) and walls along the outer edge of the sidewalk."""
    cam = scene.cam
    for _ in range(int(rng.integers(0, 3))):
        if rng.random() < 0.5:
            continue
        is_fence = rng.random() < 0.6
        z0 = rng.uniform(st.z0, 60)
        z1 = z0 + rng.uniform(6, 40)
        height = rng.uniform(1.0, 2.0) if is_fence else rng.uniform(0.8, 2.8)
        x = st.edge[s] + s * st.sidewalk[s]
        for a, b in st.segments(z0, z1):
            ops = [_op('poly', [_vquad(cam, x, x, 0, height, a, b)], FENCE if is_fence else WALL,
                       'fence' if is_fence else 'wall', 0.8 if s < 0 else 1.0)]
            if is_fence:
                zs = np.arange(a, b, rng.uniform(0.15, 0.3) * 2)
                slats = [_vquad(cam, x, x, 0.05, height * 0.95, zz, zz + 0.08) for zz in zs]
                rail = _vquad(cam, x, x, height * 0.75, height * 0.85, a, b)
                ops.append(_op('poly', np.array(slats + [rail]), None, 'fence_slat'))
            scene.add(_Scene.SIDE_FRONT, b, ops)


def _add_poles(scene: _Scene, rng, st: _Street) -> None:
    """Poles at the curb, some carrying a traffic sign or a traffic light."""
    cam = scene.cam
    for s in (-1, 1):
        x = st.edge[s] + s * 0.45
        z = st.z0 + rng.uniform(0, 10)
        while z < 90:
            height = rng.uniform(4.5, 8.5)
            if st.free(z - 1, z + 1):
                w = rng.uniform(0.09, 0.14)
                ops = [_op('poly', [_vquad(cam, x - w, x + w, 0, height, z, z)], POLE, 'pole')]
                if rng.random() < 0.4:
                    ops += _sign(cam, rng, x - s * 0.35 * rng.random(), rng.uniform(2.2, 3.2), z)
                if rng.random() < 0.3 or (st.cross and abs(z - st.cross[0]) < 6):
                    ops += _traffic_light(cam, rng, x - s * 0.2, height - 0.3, z)
                scene.add(_Scene.STREET, z, ops)
            z += rng.uniform(10, 30)


def _sign(cam, rng, x, y, z) -> List[_Op]:
    size = rng.uniform(0.5, 0.8)
    shape = rng.integers(0, 3)
    if shape == 0:
        return [_disc(cam, x, y, z, size / 2, SIGN, 'sign')]
    if shape == 1:
        return [_op('poly', [_vquad(cam, x - size / 2, x + size / 2, y - size / 2, y + size / 2,
                                    z, z)], SIGN, 'sign')]
    tri = cam.project([x - size / 2, x + size / 2, x],
                      [y - size / 3, y - size / 3, y + size / 2], z)
    return [_op('poly', [tri], SIGN, 'sign')]


def _traffic_light(cam, rng, x, y, z) -> List[_Op]:
    ops = [_op('poly', [_vquad(cam, x - 0.17, x + 0.17, y - 0.95, y, z, z)], LIGHT, 'tlight')]
    lit = rng.integers(0, 3)
    for i, role in enumerate(('lamp_red', 'lamp_amber', 'lamp_green')):
        ops.append(_disc(cam, x, y - 0.17 - 0.3 * i, z, 0.1, None, role, 1.0 if i == lit else 0.3))
    return ops


def _add_street_trees(scene: _Scene, rng, st: _Street) -> None:
    cam = scene.cam
    for s in (-1, 1):
        if st.sidewalk[s] < 2.0 or rng.random() < 0.5:
            continue
        x = st.edge[s] + s * st.sidewalk[s] * 0.7
        z = st.z0 + rng.uniform(0, 8)
        while z < 80:
            if st.free(z - 3, z + 3):
                scene.add(_Scene.STREET, z, _tree(cam, rng, x, z, rng.uniform(1.5, 2.5)))
            z += rng.uniform(8, 16)


# vehicle types: (label, role, width, body y0, body y1, length, cabin?)
_VEHICLES = {'car': (CAR, 'car', 1.8, 0.25, 0.95, 4.4, True),
             'truck': (TRUCK, 'truck', 2.5, 0.7, 3.6, 8.0, False),
             'bus': (BUS, 'bus', 2.55, 0.3, 3.2, 12.0, False),
             'train': (TRAIN, 'train', 2.6, 0.4, 3.6, 25.0, False)}


def _vehicle(cam, kind, x, z, scale) -> List[_Op]:
    """A box vehicle seen from behind at lateral x, rear at depth z (side, windows, wheels)."""
    label, role, w, y0, y1, length, cabin = _VEHICLES[kind]
    w, y1, length = w * scale, y1 * scale, length * scale
    xl, xr, z1 = x - w / 2, x + w / 2, z + length
    ops = [_op('poly', [_gquad(cam, xl - 0.05, xr + 0.05, z - 0.15, z1)], None, _SHADOW)]
    ops.append(_op('poly', [_box(cam, xl, xr, y0, y1, z, z1)], label, role))
    side = xl if xl > 0 else xr if xr < 0 else None                     # the visible side
    if side is not None:
        ops.append(_op('poly', [_vquad(cam, side, side, y0, y1, z, z1)], label, role, 0.7))
    if cabin:
        cy1 = 1.45 * scale
        ops.append(_op('poly', [_box(cam, x - 0.42 * w, x + 0.42 * w, y1, cy1, z + 0.9, z1 - 1.3)],
                       label, role))
        ops.append(_op('poly', [_vquad(cam, x - 0.36 * w, x + 0.36 * w, y1 + 0.05, cy1 - 0.06,
                                       z + 0.95, z + 0.95)], None, 'car_window'))
        if side is not None:
            sx = x + np.sign(side) * 0.42 * w
            ops.append(_op('poly', [_vquad(cam, sx, sx, y1 + 0.05, cy1 - 0.06, z + 1.1, z1 - 1.5)],
                           None, 'car_window', 0.8))
    else:
        ops.append(_op('poly', [_vquad(cam, x - 0.4 * w, x + 0.4 * w, y1 - 1.2, y1 - 0.3, z, z)],
                       None, 'car_window'))
        if side is not None and kind != 'truck':
            ops.append(_op('poly', [_vquad(cam, side, side, y1 - 1.5, y1 - 0.4, z + 0.5, z1 - 0.5)],
                           None, 'car_window', 0.8))
    if side is not None:
        angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        wheels = [cam.project(side, 0.33 + 0.33 * np.sin(angles), wz + 0.33 * np.cos(angles))
                  for wz in (z + 0.9, z1 - 0.9)]                      # foreshortened discs
        ops.append(_op('poly', wheels, label, 'wheel'))
    for wx in (xl + 0.05, xr - 0.35):
        ops.append(_op('poly', [_vquad(cam, wx, wx + 0.3, 0, y0 + 0.05, z + 0.3, z + 0.3)], label,
                       'wheel'))
    for tx in (xl + 0.1, xr - 0.35):
        ops.append(_op('poly', [_vquad(cam, tx, tx + 0.25, y0 + 0.35, y0 + 0.5, z - 0.01,
                                       z - 0.01)],
                       None, 'taillight'))
    return ops


def _add_vehicles(scene: _Scene, rng, st: _Street) -> None:
    """Rows of parked cars along the curbs and a few vehicles in the lanes."""
    cam = scene.cam
    for s in (-1, 1):
        if rng.random() < 0.5:
            continue
        x = st.edge[s] - s * 1.1
        z = st.z0 + rng.uniform(0, 6)
        while z < 70:
            kind = 'truck' if rng.random() < 0.06 else 'car'
            scale = rng.uniform(0.92, 1.08)
            length = _VEHICLES[kind][5] * scale
            if rng.random() < 0.75 and st.free(z, z + length):
                scene.add(_Scene.STREET, z, _vehicle(cam, kind, x, z, scale))
            z += length + rng.uniform(0.6, 4)
    lo, hi = st.edge[-1] + 1.4, st.edge[1] - 1.4
    for _ in range(int(rng.integers(0, 4))):
        kind = rng.choice(['car', 'truck', 'bus', 'train'], p=[0.72, 0.1, 0.12, 0.06])
        x = rng.uniform(lo, hi) if hi > lo else (lo + hi) / 2
        z = rng.uniform(st.z0 + 2, 80)
        scene.add(_Scene.STREET, z, _vehicle(cam, kind, x, z, rng.uniform(0.95, 1.05)))


def _person(cam, rng, x, z, label=PERSON, seated=False, y_base=0.0) -> List[_Op]:
    """An upright person facing the camera: legs, torso with arms, head."""
    h = rng.uniform(1.6, 1.9)
    hip, shoulder = y_base + 0.48 * h, y_base + 0.82 * h
    if seated:
        hip, shoulder = y_base, y_base + 0.36 * h
    legs_y0 = y_base - 0.55 if seated else y_base
    ops = []
    for dx in (-1, 1):
        ops.append(_op('poly', [_vquad(cam, x + dx * 0.02, x + dx * 0.15, legs_y0, hip + 0.05, z,
                                       z)], label, 'person_legs'))
    torso = cam.project([x - 0.16, x + 0.16, x + 0.22, x + 0.13, x - 0.13, x - 0.22],
                        [hip, hip, shoulder - 0.05, shoulder + 0.02, shoulder + 0.02,
                         shoulder - 0.05], z)
    ops.append(_op('poly', [torso, _vquad(cam, x - 0.29, x - 0.2, hip + 0.05, shoulder, z, z),
                            _vquad(cam, x + 0.2, x + 0.29, hip + 0.05, shoulder, z, z)],
                   label, 'person_top'))
    ops.append(_disc(cam, x, shoulder + 0.14, z, 0.11, label, 'skin'))
    return ops


def _two_wheeler(cam, rng, x, z, motor: bool, rider: bool) -> List[_Op]:
    """A bicycle or motorcycle seen from the side (crossing), optionally with its rider."""
    label, role = (MOTORCYCLE, 'motorcycle') if motor else (BICYCLE, 'bicycle')
    r, half = (0.32, 0.7) if motor else (0.34, 0.52)
    ops = []
    for dx in (-half, half):
        ops.append(_disc(cam, x + dx, r, z, r, label, 'wheel' if motor else role,
                         ring=0 if motor else 0.05))
    if motor:
        body = cam.project([x - half, x - 0.1, x + half * 0.8, x + half, x], [0.5, 0.95, 0.9, 0.5,
                                                                              0.35], z)
        ops.append(_op('poly', [body], label, role))
    else:
        frame = cam.project([x - half, x - 0.05, x + half * 0.75, x + half, x + half * 0.75,
                             x - 0.05, x - 0.15], [r, r, 0.95, r, 0.95, 0.95, 1.0], z)
        ops.append(_op('lines', (frame, max(1, int(round(0.05 * cam.scale(z))))), label, role))
    if rider:
        ops += _person(cam, rng, x - 0.1, z - 0.01, RIDER, seated=True, y_base=0.95)
    return ops


def _add_people(scene: _Scene, rng, st: _Street) -> None:
    """Pedestrians on the sidewalks, riders and parked bicycles, unlabelled street clutter."""
    cam = scene.cam
    for s in (-1, 1):
        if not st.sidewalk[s]:
            continue
        for _ in range(int(rng.integers(0, 6))):
            x = st.edge[s] + s * rng.uniform(0.4, st.sidewalk[s] - 0.3)
            z = rng.uniform(st.z0 + 0.5, 45)
            scene.add(_Scene.STREET, z, _person(cam, rng, x, z))
        if rng.random() < 0.2:
            x = st.edge[s] + s * rng.uniform(0.8, st.sidewalk[s])
            z = rng.uniform(st.z0 + 1, 30)
            scene.add(_Scene.STREET, z, _two_wheeler(cam, rng, x, z, False, False))
        if rng.random() < 0.25:                                # a bin: void, like Cityscapes
            x = st.edge[s] + s * rng.uniform(0.6, max(0.7, st.sidewalk[s]))
            z = rng.uniform(st.z0 + 1, 40)
            scene.add(_Scene.STREET, z, [_op('poly', [_box(cam, x - 0.3, x + 0.3, 0, 1.0, z,
                                                           z + 0.6)], IGNORE_INDEX, 'void')])
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.45 else 0):
        motor = rng.random() < 0.35
        x = rng.uniform(st.edge[-1] + 1, st.edge[1] - 1)
        z = rng.uniform(st.z0 + 1.5, 40)
        scene.add(_Scene.STREET, z, _two_wheeler(cam, rng, x, z, motor, True))
    if st.cross and rng.random() < 0.6:                      # pedestrians on the zebra crossing
        for _ in range(int(rng.integers(1, 4))):
            z = st.cross[0] - rng.uniform(1, 3.5)
            x = rng.uniform(st.edge[-1], st.edge[1])
            scene.add(_Scene.STREET, z, _person(cam, rng, x, z))


def _add_ego(scene: _Scene, rng) -> None:
    """The bonnet of the recording car at the bottom: unlabelled (255), as in Cityscapes."""
    if rng.random() < 0.4:
        return
    h, w = scene.cam.height, scene.cam.width
    top = h * rng.uniform(0.05, 0.12)
    xs = np.linspace(-0.05 * w, 1.05 * w, 24)
    ys = h - top * (1 - 0.35 * ((xs - w / 2) / (w / 2)) ** 2)
    poly = np.concatenate([np.stack([xs, ys], 1), [[1.05 * w, h + 2], [-0.05 * w, h + 2]]])
    scene.add(_Scene.EGO, 0.0, [_op('poly', [poly], IGNORE_INDEX, 'ego')])


def _sample_layout(rng: np.random.Generator, height: int, width: int) -> _Scene:
    """The geometry of one scene; uses rng for geometry only (see the module docstring)."""
    cam = _Camera(rng, height, width)
    scene = _Scene(cam)
    st = _Street(rng, cam)
    scene.add(_Scene.SKY, 0.0, [_op('poly', [np.array([[-1, -1], [width + 1, -1],
                                                       [width + 1, height + 1],
                                                       [-1, height + 1]], float)], SKY, 'sky')])
    _add_ground(scene, rng, st)
    _add_far_row(scene, rng, st)
    for s in (-1, 1):
        _add_side(scene, rng, st, s)
    _add_street_trees(scene, rng, st)
    _add_poles(scene, rng, st)
    _add_vehicles(scene, rng, st)
    _add_people(scene, rng, st)
    _add_ego(scene, rng)
    return scene


# --------------------------------------------------------------------------------------------
# Painting
# --------------------------------------------------------------------------------------------
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
    # per image and role: a brightness, a per-channel tint and an offset (the "mean + jitter"
    # of each class colour; multiplicative so that dark colours stay neutral)
    tint = {role: (rng.uniform(0.85, 1.15) * rng.normal(1.0, 0.06, 3), rng.normal(0, 4, 3))
            for role in _ROLES}
    # how strongly faces turned from the light darken: sunny game vs overcast real
    sun = rng.uniform(1.0, 1.4) if domain == 'source' else rng.uniform(0.3, 0.7)
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
                options = _PALETTES[op.role][d]
                base = np.asarray(options[rng.integers(len(options))], float)
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
                 domain: str) -> Tuple[np.ndarray, np.ndarray]:
    """Render one street scene.

    The geometry (hence the label map) is drawn from rng first and does not depend on the
    domain: the same generator state gives the same labels in both looks.

    Args:
        rng: the random generator (consumed).
        height: image height in pixels.
        width: image width in pixels.
        domain: 'source' (the "game" look) or 'target' (the "real" look).

    Returns:
        (img, label): uint8 RGB image (H, W, 3) and uint8 train-id map (H, W), 255 = ignore.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if height < 16 or width < 16:
        raise ValueError(f'image size must be at least 16x16, got {height}x{width}')
    scene = _sample_layout(rng, height, width)
    return _paint(scene, rng, domain)


# --------------------------------------------------------------------------------------------
# Dataset on disk
# --------------------------------------------------------------------------------------------
def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent, order-free stream per image: source, target train and val never share."""
    return np.random.default_rng(
        [seed, ('source', 'train', 'val', 'source_val').index(split), index])


def _target_name(split: str, index: int) -> str:
    return f'{CITIES[split]}_000000_{index:06d}'


def _write_atomic(path: str, data: bytes) -> None:
    tmp = os.path.join(os.path.dirname(path), f'.{os.path.basename(path)}.tmp-{os.getpid()}')
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def _write_png(path: str, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode('.png', array)
    if not ok:
        raise OSError(f'could not encode {path}')
    _write_atomic(path, buf.tobytes())


def _jobs(num_source: int, num_target_train: int, num_target_val: int,
          num_source_val: int = 0):
    """(split, index, image path, label path) relative to the dataset root, in write order."""
    for split, n, prefix in (('source', num_source, ''),
                             ('source_val', num_source_val, SOURCE_VAL_ROOT + '/')):
        for i in range(n):
            yield (split, i,
                   f"{prefix}{SOURCE_DIRS['img_dir']}/{i:05d}{SOURCE_DIRS['img_suffix']}",
                   f"{prefix}{SOURCE_DIRS['seg_map_dir']}/{i:05d}"
                   f"{SOURCE_DIRS['seg_map_suffix']}")
    for split, n in (('train', num_target_train), ('val', num_target_val)):
        for i in range(n):
            stem = f'{split}/{CITIES[split]}/{_target_name(split, i)}'
            yield (split, i,
                   f"{TARGET_DIRS['data_root']}/{TARGET_DIRS['img_dir']}/{stem}"
                   f"{TARGET_DIRS['img_suffix']}",
                   f"{TARGET_DIRS['data_root']}/{TARGET_DIRS['seg_map_dir']}/{stem}"
                   f"{TARGET_DIRS['seg_map_suffix']}")


def _read_meta(root: str) -> Optional[dict]:
    path = os.path.join(root, META_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _remove_interrupted(root: str) -> None:
    """Delete a root left without meta, but only if it holds nothing but our folders."""
    ours = {'gta', 'cityscapes', SOURCE_VAL_ROOT}
    foreign = [n for n in os.listdir(root) if n not in ours and not n.startswith('.')]
    if foreign:
        raise ValueError(
            f'{root} exists, is not a complete synthetic dataset (no {META_FILE}) and holds '
            f'other files ({", ".join(sorted(foreign)[:5])}); choose another root for the '
            f'synthetic data')
    shutil.rmtree(root)


def _generate_into(tmp: str, args: dict, progress: bool) -> dict:
    jobs = list(_jobs(args['num_source'], args['num_target_train'], args['num_target_val'],
                      args['num_source_val']))
    for d in sorted({os.path.dirname(p) for _, _, img, lbl in jobs for p in (img, lbl)}):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    for split, i, img_path, lbl_path in tqdm(jobs, desc='synthetic data', disable=not progress,
                                            unit='img'):
        domain = 'source' if split.startswith('source') else 'target'
        img, label = render_scene(_image_rng(args['seed'], split, i), args['height'],
                                  args['width'], domain)
        _write_png(os.path.join(tmp, img_path), img)
        _write_png(os.path.join(tmp, lbl_path), label)
    meta = dict(generator='mmseg_ddb.datasets.synthetic', version=GENERATOR_VERSION, args=args,
                counts=dict(source=args['num_source'], target_train=args['num_target_train'],
                            target_val=args['num_target_val'],
                            source_val=args['num_source_val']),
                classes=list(CLASSES), source=SOURCE_DIRS, target=TARGET_DIRS, cities=CITIES)
    _write_atomic(os.path.join(tmp, META_FILE), json.dumps(meta, indent=2).encode())
    return json.loads(json.dumps(meta))


def generate_synthetic(root: str, *, num_source: int = 400, num_target_train: int = 400,
                       num_target_val: int = 100, num_source_val: int = 50,
                       height: int = 128, width: int = 256,
                       seed: int = 0, progress: bool = True) -> dict:
    """Write the synthetic source and target domains under root, unless already there.

    Layout: ``gta/{images,labels}`` (GTA5 converted: ``00000.png`` and
    ``00000_labelTrainIds.png``) and ``cityscapes/{leftImg8bit,gtFine}/{train,val}/CITY/``
    (``CITY_000000_000000_leftImg8bit.png``, ``..._gtFine_labelTrainIds.png``), plus
    ``gta_val/gta/{images,labels}`` (held-out source-look images) and
    ``synthetic_meta.json``, whose presence marks a complete dataset. Everything is written
    into ``{root}.tmp-<pid>`` and renamed to root at the end, under a lock on ``{root}.lock``
    so that concurrent callers (e.g. distributed ranks) generate once. The same arguments give
    byte-identical files.

    Returns:
        The meta dict (generator version, arguments, counts, layout).

    Raises:
        ValueError: root holds a dataset made with other arguments or another generator
            version, or holds foreign files.
    """
    args = dict(num_source=num_source, num_target_train=num_target_train,
                num_target_val=num_target_val, num_source_val=num_source_val,
                height=height, width=width, seed=seed)
    for key, value in args.items():
        if not isinstance(value, (int, np.integer)) or value < (16 if key in ('height', 'width')
                                                                else 0):
            raise ValueError(f'{key} must be an integer >= 0 (sizes >= 16), got {value!r}')
    args = {k: int(v) for k, v in args.items()}
    root = os.path.abspath(root)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with open(root + '.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            meta = _read_meta(root)
            if meta is not None:
                if meta.get('args') != args or meta.get('version') != GENERATOR_VERSION:
                    raise ValueError(
                        f'{root} holds synthetic data made with {meta.get("args")} (generator '
                        f'version {meta.get("version")}), not {args} (version '
                        f'{GENERATOR_VERSION}); delete the folder or choose another root')
                return meta
            if os.path.exists(root):
                _remove_interrupted(root)
            for stale in glob.glob(glob.escape(root) + '.tmp-*'):  # crashed runs; we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            tmp = f'{root}.tmp-{os.getpid()}'
            try:
                meta = _generate_into(tmp, args, progress)
                os.replace(tmp, root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return meta
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_synthetic(root: str, **kwargs) -> dict:
    """Generate the synthetic dataset at root if it is not there yet (see generate_synthetic)."""
    return generate_synthetic(root, **kwargs)


# --------------------------------------------------------------------------------------------
# Preview and command line
# --------------------------------------------------------------------------------------------
def colorize(label: np.ndarray) -> np.ndarray:
    """Train-id map -> RGB with the Cityscapes palette (ignore in black)."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(PALETTE)] = PALETTE
    return lut[label]


def _read_rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def make_preview(root: str, num: int = 4) -> np.ndarray:
    """A grid from a generated root: rows are source images, source labels, target (val)
    images and target labels, `num` columns."""
    meta = _read_meta(root)
    if meta is None:
        raise FileNotFoundError(f'{root} holds no complete synthetic dataset ({META_FILE})')
    rows = {'source': [], 'val': []}
    counts = dict(source=meta['counts']['source'], val=meta['counts']['target_val'])
    for split, i, img_path, lbl_path in _jobs(meta['counts']['source'], 0,
                                              meta['counts']['target_val']):
        if i < min(num, counts[split]):
            label = cv2.imread(os.path.join(root, lbl_path), cv2.IMREAD_UNCHANGED)
            rows[split].append((_read_rgb(os.path.join(root, img_path)), colorize(label)))
    grid = []
    for split in ('source', 'val'):
        if rows[split]:
            for k in (0, 1):
                grid.append(np.concatenate([pair[k] for pair in rows[split]], 1))
    widths = {g.shape[1] for g in grid}
    if not grid or len(widths) != 1:
        raise ValueError(f'need at least {num} source and target val images to preview')
    return np.concatenate(grid, 0)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Generate the built-in synthetic GTA-like -> Cityscapes-like domain shift.')
    parser.add_argument('root', help='output folder, e.g. data/synthetic')
    parser.add_argument('--num-source', type=int, default=400)
    parser.add_argument('--num-target-train', type=int, default=400)
    parser.add_argument('--num-target-val', type=int, default=100)
    parser.add_argument('--num-source-val', type=int, default=50)
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=256)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--preview', metavar='PNG',
                        help='also write a grid of 4 source and 4 target images with labels')
    a = parser.parse_args(argv)
    meta = generate_synthetic(a.root, num_source=a.num_source,
                              num_target_train=a.num_target_train,
                              num_target_val=a.num_target_val,
                              num_source_val=a.num_source_val, height=a.height, width=a.width,
                              seed=a.seed, progress=not a.no_progress)
    print(f"synthetic data in {a.root}: {meta['counts']}")
    if a.preview:
        grid = make_preview(a.root)
        if not cv2.imwrite(a.preview, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f'could not write {a.preview}')
        print(f'preview written to {a.preview}')


if __name__ == '__main__':
    main()
