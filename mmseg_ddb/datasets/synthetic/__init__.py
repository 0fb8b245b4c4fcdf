"""The built-in synthetic domain shift: procedural street scenes in three looks.

With no dataset on disk the project still runs its main job (DESIGN.md section 5): this package
renders seeded street-like scenes with the 19 Cityscapes train-id classes in a *source* look
(a saturated, flat, brightly lit "game") and a *target* look (a different palette per class,
overcast lighting, haze, blur, vignetting and camera noise: "real"). Both domains draw their
geometry from the same distribution, so a model trained on the source loses on the target only
because of appearance, which is the gap that domain adaptation closes. A third, *generic* look
(random colours per class and image, any camera of the two) is labelled with the 7 Cityscapes
categories instead of the 19 classes (``CATEGORIES``, ``category_lut``); it feeds the
pretraining that stands in for ImageNet.

How a scene is made:

1. ``layout._sample_layout`` places a pinhole camera and a world of metres (road, sidewalks,
   buildings with windows, trees, poles with signs and traffic lights, fences, walls, vehicles,
   people, riders) and projects it into a list of drawing ops in painter's order. It uses the
   random generator only for geometry, so the labels depend on the geometry alone: the same
   generator state gives the same label map in every look.
2. ``render._paint`` draws the ops into the label map and into the image with colours drawn per
   image from the domain's palette (mean + jitter) and per object, then adds class textures
   (foliage noise, grass, asphalt, clouds) and the domain's camera model.

Two knobs change the scenes: ``thing_scale`` (percent) sizes the thin and small things (poles,
signs, traffic lights, people, two-wheelers), and ``shift`` (percent) sets the strength of the
target look (its colours moved further from the source's, stronger haze, vignetting and noise).
At 100 (``generate_synthetic``'s default; the command line's is 200) both leave the scenes as
they were before the knobs existed.

``generate_synthetic`` writes the looks to disk in the GTA5 (converted) and Cityscapes
layouts, atomically and under a file lock; ``python -m mmseg_ddb.datasets.synthetic ROOT`` does
the same from the command line and can write a preview grid.

Modules, each importing only those above it: ``palette`` (classes, categories, appearance
tables), ``geometry`` (drawing op, camera, scene, street plan, projection), ``scenery`` and
``traffic`` (the objects of a street), ``layout`` (one scene's ops), ``render``
(``render_scene``), ``generate`` (the dataset on disk, preview) and ``cli``.

These modules import neither mmseg, mmengine, mmcv nor torch (from the rest of the package only
``mmseg_ddb.utils.fileio``, for atomic writes, and ``mmseg_ddb.datasets.cityscapes_labels``, the
class table), so that tools and tests can use them on their own.
"""
from .cli import main
from .generate import (
                       CITIES,
                       GENERATOR_VERSION,
                       GENERIC_ROOT,
                       META_FILE,
                       SOURCE_DIRS,
                       SOURCE_VAL_ROOT,
                       TARGET_DIRS,
                       _image_rng,  # noqa: F401  (tests draw the same scenes)
                       colorize,
                       ensure_synthetic,
                       generate_synthetic,
                       make_preview,
)
from .palette import CATEGORIES, CLASSES, DOMAINS, IGNORE_INDEX, PALETTE, category_lut
from .render import render_scene

__all__ = [
    'CATEGORIES', 'CITIES', 'CLASSES', 'DOMAINS', 'GENERATOR_VERSION', 'GENERIC_ROOT',
    'IGNORE_INDEX', 'META_FILE', 'PALETTE', 'SOURCE_DIRS', 'SOURCE_VAL_ROOT', 'TARGET_DIRS',
    'category_lut', 'colorize', 'ensure_synthetic', 'generate_synthetic', 'main',
    'make_preview', 'render_scene'
]
