"""The classes and the appearance of the synthetic scenes: the 19 Cityscapes train ids and their
palette, the 7 Cityscapes categories, and per domain the colour options of every drawing role
(``_PALETTES``), the class textures (``_TEXTURE``) and the camera ranges (``_CAMERA``)."""
import numpy as np

from ..cityscapes_labels import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    CITYSCAPES_TRAIN_LABELS,
    IGNORE_INDEX,
)

DOMAINS = ('source', 'target', 'generic')

#: the 19 Cityscapes train ids and their colours (the cityscapesscripts table)
CLASSES = CITYSCAPES_CLASSES
PALETTE = CITYSCAPES_PALETTE
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY, PERSON,
 RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)

#: the 7 Cityscapes categories: the labels of the generic look (see category_lut)
CATEGORIES = ('flat', 'construction', 'object', 'nature', 'sky', 'human', 'vehicle')


def category_lut() -> np.ndarray:
    """uint8 look-up table train id -> category index (0-6, ``CATEGORIES``; 255 stays 255),
    from the official Cityscapes label table (cityscapesscripts)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for train_id, lab in enumerate(CITYSCAPES_TRAIN_LABELS):
        lut[train_id] = CATEGORIES.index(lab.category)
    return lut


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
    # the third look that stands in for ImageNet (pretraining only): any camera of the two
    'generic': dict(exposure=(0.8, 1.2), cast=0.04, haze=(0.0, 0.25), contrast=(0.8, 1.1),
                    blur=(0.0, 0.8), vignette=(0.0, 0.25), noise=(0.5, 4.0)),
}
