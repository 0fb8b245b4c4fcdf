from .acdc import ACDC_CONDITIONS, ACDCDataset
from .cityscapes import DDBCityscapesDataset
from .dark_zurich import DDBDarkZurichDataset
from .gta import GTADataset
from .mapillary import MapillaryDataset
from .synscapes import SynscapesDataset
from .synthia import SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES, SynthiaDataset
from .transforms import DDBLoadAnnotations, DDBLoadImageFromFile
from .uda_dataset import UDADataset

__all__ = [
    'DDBCityscapesDataset', 'GTADataset', 'MapillaryDataset',
    'SynscapesDataset', 'SynthiaDataset', 'SYNTHIA_16_CLASSES',
    'SYNTHIA_13_CLASSES', 'DDBLoadAnnotations', 'DDBLoadImageFromFile', 'UDADataset',
    'ACDCDataset', 'ACDC_CONDITIONS', 'DDBDarkZurichDataset'
]
