"""The geometry toolkit of a scene: the drawing op, the pinhole camera, the painter's-order
scene, the sampled street plan and the projection of world rectangles, boxes and discs."""
from collections import namedtuple
from typing import Iterator, List, Tuple

import cv2
import numpy as np

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

    def __init__(self, rng: np.random.Generator, height: int, width: int,
                 thing_scale: float = 1.0, shift: float = 1.0):
        self.height, self.width = height, width
        self.thing = thing_scale  # size factor of thin and small things (see render_scene)
        self.shift = shift        # strength of the target look (see render_scene)
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

