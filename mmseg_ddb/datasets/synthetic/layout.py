"""The layout of one scene: camera, street plan, then scenery and road users, as drawing ops in
painter's order. It draws from the random generator for geometry only, so the label map does not
depend on the look (see the package docstring)."""
import numpy as np

from .geometry import _Camera, _op, _Scene, _Street
from .palette import SKY
from .scenery import _add_far_row, _add_ground, _add_poles, _add_side, _add_street_trees
from .traffic import _add_ego, _add_people, _add_vehicles


def _sample_layout(rng: np.random.Generator, height: int, width: int,
                   thing_scale: float = 1.0, shift: float = 1.0) -> _Scene:
    """The geometry of one scene; uses rng for geometry only (see the module docstring)."""
    cam = _Camera(rng, height, width, thing_scale, shift)
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
