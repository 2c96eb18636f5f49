"""Synthetic people written in the toolkit's data formats: an identity tree, shards, a verification ``.bin``.

The people themselves come from :class:`arcface_paddle.synthetic.faces.SyntheticFaces`; identities
``>= num_identities`` are held-out people for verification.
"""
from __future__ import annotations

import os

from tqdm import tqdm

from arcface_paddle.core.images import encode_image
from arcface_paddle.core.safe_io import atomic_save_bytes
from arcface_paddle.data.shard_format import write_shard_dataset
from arcface_paddle.data.verification_bin import save_verification_bin
from arcface_paddle.synthetic.faces import SyntheticFaces


def write_synthetic_tree(faces: SyntheticFaces, root, identities=None, ext: str = ".jpg",
                         progress: bool = False) -> list[str]:
    """``root/<identity:06d>/<index:04d>.jpg`` (sorted folder names give labels in identity order)."""
    identities = list(range(faces.num_identities) if identities is None else identities)
    written = []
    for identity in _progress(identities, progress, "identity tree"):
        for index in range(faces.images_per_identity):
            rel = os.path.join(f"{int(identity):06d}", f"{index:04d}{ext}")
            atomic_save_bytes(os.path.join(root, rel), encode_image(faces.render(identity, index), ext))
            written.append(rel)
    return written


def write_synthetic_shards(faces: SyntheticFaces, root, identities=None, progress: bool = False) -> int:
    """Shards + ``label.txt`` + ``classes.txt`` in the reference format; returns the image count."""
    identities = list(range(faces.num_identities) if identities is None else identities)
    records = ((f"{identity:06d}/{index:04d}.jpg", encode_image(faces.render(identity, index), ".jpg"), label)
               for label, identity in enumerate(_progress(identities, progress, "shards"))
               for index in range(faces.images_per_identity))
    return write_shard_dataset(root, records, class_names=[f"{i:06d}" for i in identities])


def write_synthetic_verification_bin(faces: SyntheticFaces, path, identities, num_pairs: int) -> None:
    """``num_pairs`` same/different pairs of ``identities`` (held-out people) as a verification ``.bin``."""
    images, issame = faces.verification_pairs(identities, num_pairs)
    save_verification_bin(path, images, issame)


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    return tqdm(items, desc=desc, unit="identity", dynamic_ncols=True)

