"""egmt.data: images in, tensors out (reading/writing, Y/CbCr, dataset pairs, training crops)."""

from egmt.data.color import merge_luma, split_luma
from egmt.data.crops import PairCropDataset, crop_positions
from egmt.data.io import IMAGE_EXTENSIONS, read_image, write_image
from egmt.data.pairs import LoadedPair, Pair, find_pairs, load_pair, match_folders, pair_from_arrays, read_split

__all__ = [
    "IMAGE_EXTENSIONS",
    "LoadedPair",
    "Pair",
    "PairCropDataset",
    "crop_positions",
    "find_pairs",
    "match_folders",
    "pair_from_arrays",
    "load_pair",
    "merge_luma",
    "read_image",
    "read_split",
    "split_luma",
    "write_image",
]
