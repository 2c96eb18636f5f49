"""Recognition datasets yielding ``(CHW float32 normalised RGB, int64 label)``.

* :class:`ShardDataset` — ``label.txt`` + per-image ``.bin`` shards (reference ``MS1M_bin`` layout).
* :class:`ImageFolderDataset` — raw image files, listed by a label file or found as an identity-folder tree.
* :class:`SyntheticDataset` — the seeded synthetic people of :mod:`.synthetic`, rendered on the fly.

All three share :func:`.transforms.to_model_input` (resize to 112, random flip when training,
``preprocessing.normalize_rgb_uint8``) and work with ``paddle.io.DataLoader(num_workers>0)`` and
``DistributedBatchSampler``: they hold only paths and integers, so they pickle cheaply to workers.
"""
from __future__ import annotations

import os

import numpy as np
import paddle

from arcface_paddle.core.images import decode_image, read_image
from arcface_paddle.data.label_file import (
    CLASSES_FILE,
    LABEL_FILE,
    check_entries_inside,
    read_classes,
    read_label_file,
    scan_identity_tree,
)
from arcface_paddle.data.shard_format import read_shard
from arcface_paddle.data.transforms import to_model_input
from arcface_paddle.preprocessing import REC_IMAGE_SIZE
from arcface_paddle.synthetic.faces import SyntheticFaces


def _num_classes(root: str, labels: np.ndarray) -> int:
    classes = os.path.join(root, CLASSES_FILE)
    counted = int(labels.max()) + 1
    if os.path.isfile(classes):
        return max(counted, len(read_classes(classes)))
    return counted


class PathList:
    """Paths of a large dataset kept as one numpy bytes array, not millions of Python strings.

    DataLoader workers are forked; touching Python objects there (refcounts) copies their memory pages,
    so a list of 5.8M path strings would be duplicated in every worker.  A numpy array is not.
    """

    def __init__(self, root: str, relative_paths):
        self.root = root
        self._rel = np.array([rel.encode("utf-8") for rel in relative_paths], dtype=np.bytes_)

    def __len__(self) -> int:
        return len(self._rel)

    def __getitem__(self, index: int) -> str:
        return os.path.join(self.root, self._rel[index].decode("utf-8"))


class _LabelledFiles(paddle.io.Dataset):
    def __init__(self, root, entries, train: bool, image_size: int, source: str = ""):
        super().__init__()
        self.root = os.fspath(root)
        check_entries_inside(entries, self.root, source or self.root)    # a dataset never reads outside itself
        self.paths = PathList(self.root, (rel for rel, _ in entries))
        self.labels = np.array([label for _, label in entries], dtype=np.int64)
        self.train = bool(train)
        self.image_size = int(image_size)
        self.num_classes = _num_classes(self.root, self.labels)

    def __len__(self) -> int:
        return len(self.paths)

    def read_rgb(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, index: int):
        image = self.read_rgb(index)
        return to_model_input(image, self.train, self.image_size), self.labels[index]


class ShardDataset(_LabelledFiles):
    """``root/label.txt`` + ``root/images/%08d.bin`` shards."""

    def __init__(self, root, train: bool = True, label_file: str = LABEL_FILE, image_size: int = REC_IMAGE_SIZE):
        label_path = os.path.join(os.fspath(root), label_file)
        super().__init__(root, read_label_file(label_path), train, image_size, source=label_path)

    def read_rgb(self, index: int) -> np.ndarray:
        path = self.paths[index]
        _, image_bytes = read_shard(path)
        return decode_image(image_bytes, source=path)


class ImageFolderDataset(_LabelledFiles):
    """Raw images: ``label_file`` lines ``relative/path<TAB>label``, or (without one) an identity-folder
    tree ``root/<person>/<image>`` labelled 0..N-1 by sorted folder name, as ``convert_image_bin`` does."""

    def __init__(self, root, label_file=None, train: bool = True, image_size: int = REC_IMAGE_SIZE):
        root = os.fspath(root)
        source = root
        if label_file is not None:
            # a relative label file is looked up in ``root`` first, then from the working directory
            in_root = os.path.join(root, label_file)
            source = in_root if os.path.isfile(in_root) else label_file
            entries = read_label_file(source)
        else:
            entries, _ = scan_identity_tree(root)
        super().__init__(root, entries, train, image_size, source=source)

    def read_rgb(self, index: int) -> np.ndarray:
        return read_image(self.paths[index])


class SyntheticDataset(paddle.io.Dataset):
    """``num_identities × images_per_identity`` synthetic faces; item i is identity i // M, image i % M."""

    def __init__(self, num_identities: int, images_per_identity: int, seed: int = 0,
                 image_size: int = REC_IMAGE_SIZE, train: bool = True):
        super().__init__()
        self.faces = SyntheticFaces(num_identities, images_per_identity, seed=seed, image_size=image_size)
        self.num_classes = int(num_identities)
        self.images_per_identity = int(images_per_identity)
        self.image_size = int(image_size)
        self.train = bool(train)
        self.labels = np.repeat(np.arange(num_identities, dtype=np.int64), images_per_identity)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        identity, image_index = divmod(int(index), self.images_per_identity)
        image = self.faces.render(identity, image_index)
        return to_model_input(image, self.train, self.image_size), self.labels[index]
