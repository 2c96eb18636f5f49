"""InsightFace verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin`` ...).

The file is a pickled ``(images, issame)``: ``images`` a list of 2·P encoded image files (bytes) — or
uint8 arrays, either 1-D encoded bytes or decoded H×W×3 RGB — and ``issame`` P booleans, pair ``k``
being images ``2k`` and ``2k+1``.  It is read with the restricted unpickler (plain data and numpy
arrays only).
"""
from __future__ import annotations

import os
import pickle

import cv2
import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import decode_image, encode_image
from arcface_paddle.core.restricted_pickle import load_pickle_file
from arcface_paddle.core.safe_io import atomic_save_bytes, read_file_bytes
from arcface_paddle.data.label_file import scan_identity_tree


def _to_rgb(item, source: str) -> np.ndarray:
    if isinstance(item, (bytes, bytearray)):
        return decode_image(bytes(item), source)
    if isinstance(item, np.ndarray) and item.dtype == np.uint8:
        if item.ndim == 1:
            return decode_image(item.tobytes(), source)
        if item.ndim == 3 and item.shape[2] == 3:
            return item
        if item.ndim == 3 and item.shape[0] == 3:          # CHW arrays as some exporters store them
            return np.ascontiguousarray(item.transpose(1, 2, 0))
    raise ToolkitError(f"{source}: unsupported image entry ({type(item).__name__} "
                       f"{getattr(item, 'shape', '')} {getattr(item, 'dtype', '')})")


def load_verification_bin(path, image_size=None) -> tuple[np.ndarray, np.ndarray]:
    """→ (images N×H×W×3 uint8 RGB, issame bool of N/2); ``image_size`` (int or (h, w)) resizes every image."""
    path = os.fspath(path)
    obj = load_pickle_file(path, "verification file", allow_numpy=True)
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ToolkitError(f"{path}: expected a pickled (images, issame) pair")
    bins, issame = obj
    issame = np.asarray(issame)
    if issame.ndim != 1 or issame.dtype.kind not in "bui":
        raise ToolkitError(f"{path}: issame must be a list of booleans")
    issame = issame.astype(bool)
    if isinstance(bins, np.ndarray) and bins.ndim == 4:
        bins = list(bins)
    if not isinstance(bins, (list, tuple)) or len(bins) != 2 * len(issame) or not issame.size:
        raise ToolkitError(f"{path}: {len(bins) if hasattr(bins, '__len__') else '?'} images "
                           f"for {len(issame)} pairs (expected two images per pair)")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    images = []
    for i, item in enumerate(bins):
        image = _to_rgb(item, f"{path} image {i}")
        if image_size is not None and image.shape[:2] != tuple(image_size):
            image = cv2.resize(image, (image_size[1], image_size[0]), interpolation=cv2.INTER_AREA)
        if images and image.shape != images[0].shape:
            raise ToolkitError(f"{path}: image {i} is {image.shape[1]}×{image.shape[0]} but image 0 is "
                               f"{images[0].shape[1]}×{images[0].shape[0]}; pass image_size to resize")
        images.append(image)
    return np.stack(images), issame


def save_verification_bin(path, images, issame, image_format: str = ".jpg", as_arrays: bool = False) -> None:
    """Write ``(images, issame)`` atomically; images are RGB uint8 arrays or already-encoded bytes.

    Arrays are stored JPEG-encoded (as InsightFace ships them) or, with ``as_arrays``, as raw uint8 arrays.
    """
    issame = [bool(x) for x in np.asarray(issame).reshape(-1)]
    if len(images) != 2 * len(issame):
        raise ValueError(f"{len(images)} images for {len(issame)} pairs (expected two per pair)")
    stored = []
    for image in images:
        if isinstance(image, (bytes, bytearray)):
            stored.append(bytes(image))
        elif as_arrays:
            stored.append(np.ascontiguousarray(image, dtype=np.uint8))
        else:
            stored.append(encode_image(np.asarray(image, dtype=np.uint8), image_format))
    atomic_save_bytes(path, pickle.dumps((stored, issame), protocol=4))


def pairs_from_tree(root, num_pairs: int, seed: int = 0) -> tuple[list[bytes], np.ndarray]:
    """Same/different pairs (alternating, half each) from an identity-folder tree, seeded.

    Images are kept as their original encoded bytes.  Same-person pairs need identities with at least
    two images; different-person pairs need at least two identities.
    """
    root = os.fspath(root)
    entries, classes = scan_identity_tree(root)
    by_label: dict[int, list[str]] = {}
    for rel, label in entries:
        by_label.setdefault(label, []).append(rel)
    labels = sorted(by_label)
    multi = [label for label in labels if len(by_label[label]) >= 2]
    if len(labels) < 2 or not multi:
        raise ToolkitError(f"{root}: verification pairs need >= 2 identities and one with >= 2 images "
                           f"(found {len(labels)} identities, {len(multi)} with several images)")
    sizes = np.array([len(by_label[label]) for label in labels])
    same_capacity = int((sizes * (sizes - 1) // 2).sum())
    diff_capacity = int((sizes.sum() ** 2 - (sizes ** 2).sum()) // 2)
    want_same, want_diff = (num_pairs + 1) // 2, num_pairs // 2
    if want_same > same_capacity or want_diff > diff_capacity:
        raise ToolkitError(f"{root}: only {min(same_capacity, want_same) + min(diff_capacity, want_diff)} distinct "
                           f"balanced pairs available ({same_capacity} same-person), {num_pairs} requested")
    rng = np.random.default_rng(seed)
    seen, pairs = set(), []
    for attempt in range(num_pairs * 50):
        if len(pairs) == num_pairs:
            break
        same = len(pairs) % 2 == 0
        if same:
            label = multi[rng.integers(len(multi))]
            i, j = rng.choice(len(by_label[label]), 2, replace=False)
            a, b = by_label[label][i], by_label[label][j]
        else:
            la, lb = rng.choice(len(labels), 2, replace=False)
            a = by_label[labels[la]][rng.integers(len(by_label[labels[la]]))]
            b = by_label[labels[lb]][rng.integers(len(by_label[labels[lb]]))]
        key = (min(a, b), max(a, b))
        if key not in seen:
            seen.add(key)
            pairs.append((a, b, same))
    if len(pairs) < num_pairs:
        raise ToolkitError(f"{root}: only {len(pairs)} distinct pairs available, {num_pairs} requested")
    images, issame, cache = [], [], {}
    for a, b, same in pairs:
        for rel in (a, b):
            if rel not in cache:
                cache[rel] = read_file_bytes(os.path.join(root, rel), "image file")
                decode_image(cache[rel], os.path.join(root, rel))      # refuse undecodable files up front
            images.append(cache[rel])
        issame.append(same)
    return images, np.array(issame, dtype=bool)
