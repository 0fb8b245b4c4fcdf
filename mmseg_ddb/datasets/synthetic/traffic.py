"""The road users of a street: parked and moving vehicles, pedestrians, riders on bicycles
and motorcycles, unlabelled clutter and the ego vehicle's bonnet."""
from typing import List

import numpy as np

from .geometry import _box, _disc, _gquad, _Op, _op, _Scene, _Street, _vquad
from .palette import (
    _SHADOW,
    BICYCLE,
    BUS,
    CAR,
    IGNORE_INDEX,
    MOTORCYCLE,
    PERSON,
    RIDER,
    TRAIN,
    TRUCK,
)

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
    k = cam.thing
    h = rng.uniform(1.6, 1.9) * k
    hip, shoulder = y_base + 0.48 * h, y_base + 0.82 * h
    if seated:
        hip, shoulder = y_base, y_base + 0.36 * h
    legs_y0 = y_base - 0.55 * k if seated else y_base
    ops = []
    for dx in (-1, 1):
        ops.append(_op('poly', [_vquad(cam, x + dx * 0.02 * k, x + dx * 0.15 * k, legs_y0,
                                       hip + 0.05 * k, z, z)], label, 'person_legs'))
    torso = cam.project(x + k * np.array([-0.16, 0.16, 0.22, 0.13, -0.13, -0.22]),
                        [hip, hip, shoulder - 0.05 * k, shoulder + 0.02 * k, shoulder + 0.02 * k,
                         shoulder - 0.05 * k], z)
    ops.append(_op('poly', [torso, _vquad(cam, x - 0.29 * k, x - 0.2 * k, hip + 0.05 * k,
                                          shoulder, z, z),
                            _vquad(cam, x + 0.2 * k, x + 0.29 * k, hip + 0.05 * k, shoulder, z,
                                   z)],
                   label, 'person_top'))
    ops.append(_disc(cam, x, shoulder + 0.14 * k, z, 0.11 * k, label, 'skin'))
    return ops


def _two_wheeler(cam, rng, x, z, motor: bool, rider: bool) -> List[_Op]:
    """A bicycle or motorcycle seen from the side (crossing), optionally with its rider."""
    label, role = (MOTORCYCLE, 'motorcycle') if motor else (BICYCLE, 'bicycle')
    k = cam.thing
    r, half = (0.32 * k, 0.7 * k) if motor else (0.34 * k, 0.52 * k)
    ops = []
    for dx in (-half, half):
        ops.append(_disc(cam, x + dx, r, z, r, label, 'wheel' if motor else role,
                         ring=0 if motor else 0.05 * k))
    if motor:
        body = cam.project([x - half, x - 0.1 * k, x + half * 0.8, x + half, x],
                           k * np.array([0.5, 0.95, 0.9, 0.5, 0.35]), z)
        ops.append(_op('poly', [body], label, role))
    else:
        frame = cam.project([x - half, x - 0.05 * k, x + half * 0.75, x + half, x + half * 0.75,
                             x - 0.05 * k, x - 0.15 * k], [r, r, 0.95 * k, r, 0.95 * k, 0.95 * k,
                                                           1.0 * k], z)
        ops.append(_op('lines', (frame, max(1, int(round(0.05 * k * cam.scale(z))))), label,
                       role))
    if rider:
        ops += _person(cam, rng, x - 0.1 * k, z - 0.01, RIDER, seated=True, y_base=0.95 * k)
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

