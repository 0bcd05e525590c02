"""Image data sets: CIFAR-10 in its official binary format, and ImageFolder (`root/<class>/<image>`)."""
from __future__ import annotations

import os

import numpy as np

from ..utils.data.dataset import Dataset
from ._optional import optional_library
from .root import data_root, missing

__all__ = ["CIFAR10", "ImageFolder", "IMG_EXTENSIONS", "pil_loader"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

_CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_CIFAR_RECORD = 1 + 3 * 32 * 32


def _transformed(dataset, sample, target) -> tuple:
    """`(sample, target)` through the data set's `transform` and `target_transform`, where set."""
    if dataset.transform is not None:
        sample = dataset.transform(sample)
    if dataset.target_transform is not None:
        target = dataset.target_transform(target)
    return sample, target


class CIFAR10(Dataset):
    """CIFAR-10 from `cifar-10-batches-bin/` (`data_batch_1..5.bin`, `test_batch.bin`: records of
    one label byte and 3072 pixel bytes, channel-major).

    Args:
        root: the folder holding `cifar-10-batches-bin/` (or that folder itself); default `$EMBER_DATA`.
        train: the 50,000 training images, else the 10,000 test images.
        transform / target_transform: applied to each image / label.

    `data` is a uint8 array `(N, 32, 32, 3)` (HWC, as torchvision's), `targets` a list of ints.
    A sample is `(image, label)` where the image is that HWC uint8 array (torchvision gives a PIL
    image; `transforms.ToTensor` takes either).
    """

    base_folder = "cifar-10-batches-bin"
    train_files = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_files = ["test_batch.bin"]

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None):
        self.root = data_root(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        folder = os.path.join(self.root, self.base_folder)
        if not os.path.isdir(folder) and os.path.isfile(os.path.join(self.root, self.test_files[0])):
            folder = self.root
        names = self.train_files if train else self.test_files
        records = []
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise missing(path, "CIFAR-10 binary file", "the official binary version, cifar-10-batches-bin/")
            raw = np.fromfile(path, dtype=np.uint8)
            if raw.size % _CIFAR_RECORD:
                raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {_CIFAR_RECORD}-byte CIFAR-10 "
                                 f"records (1 label byte + 3072 pixel bytes)")
            records.append(raw.reshape(-1, _CIFAR_RECORD))
        rec = np.concatenate(records) if len(records) > 1 else records[0]
        self.targets = rec[:, 0].astype(np.int64).tolist()
        self.data = np.ascontiguousarray(rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        meta = os.path.join(folder, "batches.meta.txt")
        self.classes = list(_CIFAR_CLASSES)
        if os.path.isfile(meta):
            with open(meta, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
            if names:
                self.classes = names
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return _transformed(self, self.data[index], self.targets[index])

    def __repr__(self) -> str:
        return f"CIFAR10(root={self.root!r}, train={self.train}, {len(self)} images)"


def _pil():
    with optional_library("decoding images", "Pillow", "pillow"):
        from PIL import Image
    return Image


def pil_loader(path: str):
    """The image at `path` as an RGB PIL image (decoded now, file closed)."""
    Image = _pil()
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


class ImageFolder(Dataset):
    """Images in `root/<class>/**/<image>`; classes are the sorted subfolder names.

    Args:
        root: the folder of class folders.
        transform / target_transform: applied to each image / label.
        loader: path -> image (default: `pil_loader`, an RGB PIL image; needs Pillow).
        extensions: accepted file suffixes (case-insensitive); `is_valid_file` replaces the check.
        allow_empty: accept class folders without any image.

    Attributes: `classes`, `class_to_idx`, `samples` (list of (path, class index)), `targets`.
    """

    def __init__(self, root, transform=None, target_transform=None, loader=None, is_valid_file=None,
                 allow_empty: bool = False, extensions=IMG_EXTENSIONS):
        self.root = os.fspath(root)
        if loader is None:
            _pil()  # fail now, with the install hint, rather than in the first __getitem__
            loader = pil_loader
        if is_valid_file is not None and extensions is not None and extensions is not IMG_EXTENSIONS:
            raise ValueError("Both extensions and is_valid_file cannot be passed at the same time")
        self.loader = loader
        self.transform = transform
        self.target_transform = target_transform
        self.extensions = None if is_valid_file is not None else tuple(e.lower() for e in extensions)
        self.classes, self.class_to_idx = self.find_classes(self.root)
        self.samples = self.make_dataset(self.root, self.class_to_idx, self.extensions, is_valid_file, allow_empty)
        self.imgs = self.samples
        self.targets = [t for _, t in self.samples]

    @staticmethod
    def find_classes(directory: str):
        if not os.path.isdir(directory):
            raise missing(directory, "image folder")
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir())
        if not classes:
            raise FileNotFoundError(f"Couldn't find any class folder in {directory}; "
                                    f"expected {directory}/<class>/<image>")
        return classes, {c: i for i, c in enumerate(classes)}

    @staticmethod
    def make_dataset(directory: str, class_to_idx: dict, extensions=None, is_valid_file=None,
                     allow_empty: bool = False) -> list:
        if is_valid_file is None:
            if extensions is None:
                raise ValueError("Both extensions and is_valid_file cannot be None")

            def is_valid_file(path: str) -> bool:
                return path.lower().endswith(extensions)
        samples, empty = [], []
        for cls in sorted(class_to_idx):
            target = class_to_idx[cls]
            found = 0
            for dirpath, _, fnames in sorted(os.walk(os.path.join(directory, cls), followlinks=True)):
                for fname in sorted(fnames):
                    path = os.path.join(dirpath, fname)
                    if is_valid_file(path):
                        samples.append((path, target))
                        found += 1
            if not found:
                empty.append(cls)
        if empty and not allow_empty:
            msg = f"Found no valid file for the classes {', '.join(empty)}."
            if extensions is not None:
                msg += f" Supported extensions are: {', '.join(extensions)}"
            raise FileNotFoundError(msg)
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        return _transformed(self, self.loader(path), target)

    def __repr__(self) -> str:
        return f"ImageFolder(root={self.root!r}, {len(self.classes)} classes, {len(self)} images)"
