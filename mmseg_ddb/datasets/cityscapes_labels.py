"""The Cityscapes class table, taken from ``cityscapesscripts.helpers.labels``
and never retyped: the 19 evaluated classes in train-id order, their colours
and label ids, and the label id -> train id mapping (METHOD.md section 3).

Plain Python on top of cityscapesscripts, so that the runtime datasets, the
synthetic generator and the dataset converters all read the same table."""
from cityscapesscripts.helpers.labels import labels as _CS_LABELS

IGNORE_INDEX = 255
NUM_CLASSES = 19


def _evaluated_labels() -> tuple:
    """The cityscapesscripts labels of the 19 evaluated classes, by train id."""
    by_train_id = {
        lab.trainId: lab
        for lab in _CS_LABELS
        if not lab.ignoreInEval and 0 <= lab.trainId < IGNORE_INDEX
    }
    assert sorted(by_train_id) == list(range(NUM_CLASSES)), by_train_id
    return tuple(by_train_id[i] for i in range(NUM_CLASSES))


#: The cityscapesscripts ``Label`` of each train id (name, id, category, ...).
CITYSCAPES_TRAIN_LABELS = _evaluated_labels()
#: The 19 Cityscapes class names in train-id order.
CITYSCAPES_CLASSES = tuple(lab.name for lab in CITYSCAPES_TRAIN_LABELS)
#: RGB colour of each train id.
CITYSCAPES_PALETTE = tuple(tuple(lab.color) for lab in CITYSCAPES_TRAIN_LABELS)
#: Cityscapes label id of each train id.
CITYSCAPES_TRAIN_ID_TO_ID = tuple(lab.id for lab in CITYSCAPES_TRAIN_LABELS)
#: Cityscapes label id -> train id of the labels that are evaluated; the
#: other ids (ignored in evaluation) are not keys.
CITYSCAPES_ID_TO_TRAIN_ID = {
    lab.id: lab.trainId
    for lab in _CS_LABELS
    if 0 <= lab.id < 256 and not lab.ignoreInEval
    and 0 <= lab.trainId < IGNORE_INDEX
}
