"""The static scenery of a street: ground, road markings, buildings with windows, the far row,
parks and trees, fences and walls, poles with signs and traffic lights."""
from typing import List, Optional

import numpy as np

from .geometry import _disc, _gquad, _Op, _op, _Scene, _Street, _vquad
from .palette import BUILDING, FENCE, LIGHT, POLE, ROAD, SIDEWALK, SIGN, TERRAIN, VEGETATION, WALL


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
                w = rng.uniform(0.09, 0.14) * cam.thing
                ops = [_op('poly', [_vquad(cam, x - w, x + w, 0, height, z, z)], POLE, 'pole')]
                if rng.random() < 0.4:
                    ops += _sign(cam, rng, x - s * 0.35 * rng.random(), rng.uniform(2.2, 3.2), z)
                if rng.random() < 0.3 or (st.cross and abs(z - st.cross[0]) < 6):
                    ops += _traffic_light(cam, rng, x - s * 0.2, height - 0.3, z)
                scene.add(_Scene.STREET, z, ops)
            z += rng.uniform(10, 30)


def _sign(cam, rng, x, y, z) -> List[_Op]:
    size = rng.uniform(0.5, 0.8) * cam.thing
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
    k = cam.thing
    ops = [_op('poly', [_vquad(cam, x - 0.17 * k, x + 0.17 * k, y - 0.95 * k, y, z, z)], LIGHT,
               'tlight')]
    lit = rng.integers(0, 3)
    for i, role in enumerate(('lamp_red', 'lamp_amber', 'lamp_green')):
        ops.append(_disc(cam, x, y - (0.17 + 0.3 * i) * k, z, 0.1 * k, None, role,
                         1.0 if i == lit else 0.3))
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

