"""Building an ``index.bin`` from photos: identity-folder tree or ``path<TAB>name`` label file.

Each image contributes its largest face (detected, aligned, embedded); images that cannot be read or show
no face are skipped and listed in the report, so one bad photo never stops a gallery build.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np
from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError, reason_for
from arcface_paddle.core.images import is_image_path
from arcface_paddle.core.safe_io import check_writable_folder
from arcface_paddle.pipeline.gallery import GalleryIndex, load_index

# How each crop mode is asked for on the command line (for messages).
CROP_MODE_FLAGS = {"aligned": "detection + alignment, the default", "box": "--no-align",
                   "image": "--rec without --det: the whole image"}


@dataclasses.dataclass
class BuildReport:
    index: GalleryIndex
    added: int                               # faces added by this run
    skipped: list                            # (path, reason) of images left out
    output: Optional[str] = None


def items_from_tree(img_dir: str) -> list[tuple[str, str]]:
    """(image path, identity) for ``img_dir/<identity>/**/<image>``."""
    if not os.path.isdir(img_dir):
        raise ToolkitError(f"{img_dir}: image folder not found")
    items = []
    for identity in sorted(os.listdir(img_dir)):
        folder = os.path.join(img_dir, identity)
        if not os.path.isdir(folder):
            continue
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            items.extend((os.path.join(root, name), identity) for name in sorted(files) if is_image_path(name))
    if not items:
        raise ToolkitError(f"{img_dir}: no images found in identity sub-folders (expected {img_dir}/<name>/*.jpg)")
    return items


def items_from_label_file(label_file: str, img_dir: Optional[str] = None) -> list[tuple[str, str]]:
    """(image path, identity) from lines ``path<TAB>name``; relative paths are under ``img_dir`` (or the file's folder)."""
    if not os.path.isfile(label_file):
        raise ToolkitError(f"{label_file}: label file not found")
    base = img_dir or os.path.dirname(os.path.abspath(label_file))
    items = []
    with open(label_file, "r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise ToolkitError(f"{label_file}:{number}: expected 'path<TAB>name', found {line[:80]!r}")
            path, name = parts[0].strip(), parts[1].strip()
            items.append((path if os.path.isabs(path) else os.path.join(base, path), name))
    if not items:
        raise ToolkitError(f"{label_file}: no 'path<TAB>name' lines")
    return items


def build_gallery(analyzer, img_dir: Optional[str] = None, label_file: Optional[str] = None,
                  output: Optional[str] = None, append: bool = False, progress: bool = True) -> BuildReport:
    """Embed the largest face of every listed image and write (or extend) the gallery at ``output``."""
    if analyzer.recognizer is None:
        raise ToolkitError("building an index needs recognition enabled (--rec)")
    if label_file:
        items = items_from_label_file(label_file, img_dir)
    elif img_dir:
        items = items_from_tree(img_dir)
    else:
        raise ToolkitError("building an index needs --img_dir (identity folders) or --label (path<TAB>name file)")
    if output:
        check_writable_folder(os.path.dirname(os.path.abspath(output)))
    if append and output and os.path.exists(output):
        index = load_index(output, expected_model_id=analyzer.model_id, model_dir=analyzer.rec_model_dir)
        if index.crop_mode != analyzer.crop_mode:
            raise ToolkitError(f"{output}: gallery holds {index.crop_mode!r} face crops, but these would be "
                               f"{analyzer.crop_mode!r} ({CROP_MODE_FLAGS[analyzer.crop_mode]}); one gallery must "
                               f"use one kind, so rebuild it or match the flags it was built with")
    else:
        index = GalleryIndex.empty(analyzer.rec_config.embedding_size or 0, analyzer.model_id, analyzer.crop_mode)
    names, embeddings, skipped = [], [], []
    for path, name in tqdm(items, desc="building index", unit="img", disable=not progress):
        try:
            face, _ = analyzer.embed_largest_face(path)
        except ToolkitError as error:
            skipped.append((path, reason_for(error, path)))
            continue
        names.append(name)
        embeddings.append(face.embedding)
    if not embeddings and not len(index):
        raise ToolkitError(f"{img_dir or label_file}: no face found in any of {len(items)} images; index not written")
    if embeddings:
        index.add(names, np.stack(embeddings))
    if output:
        index.save(output)
    return BuildReport(index=index, added=len(embeddings), skipped=skipped, output=output)
