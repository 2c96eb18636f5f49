"""Building a gallery from photos: identity-folder tree or ``path<TAB>name`` label file.

Each image contributes its largest face (detected, aligned, embedded); images that cannot be read or show
no face are skipped and listed in the report, so one bad photo never stops a gallery build.  The output is
any gallery store (``index.bin``, ``gallery.db``, ``milvus://...``, see :mod:`arcface_paddle.stores`); the
faces are added in one change at the end, so concurrent ``--append`` runs into one gallery all land.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError, reason_for
from arcface_paddle.core.images import is_image_path
from arcface_paddle.core.safe_io import (
    check_output_file,
    check_writable_folder,
    iter_text_lines,
    refuse_overwriting_inputs,
)
from arcface_paddle.stores import (
    ConflictError,
    GalleryStore,
    IncompatibleGalleryError,
    IndexFileStore,
    NewFace,
    NotFoundError,
    backend_of,
    open_store,
)

# How each crop mode is asked for on the command line (for messages).
CROP_MODE_FLAGS = {"aligned": "detection + alignment, the default", "box": "--no-align",
                   "image": "--rec without --det: the whole image"}


@dataclasses.dataclass
class BuildReport:
    index: GalleryStore                      # the gallery written (in memory when no output was given)
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
    if not os.path.exists(label_file):
        raise ToolkitError(f"{label_file}: label file not found")
    base = img_dir or os.path.dirname(os.path.abspath(label_file))
    items = []
    for number, line in iter_text_lines(label_file, "label file"):
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
        if backend_of(output) != "milvus":
            check_output_file(output, "gallery file")
        refuse_overwriting_inputs([output], [path for path, _ in items])
    info = analyzer.gallery_info
    existing = _existing_gallery(analyzer, output, append) if output else None
    names, embeddings, sources, skipped = [], [], [], []
    for path, name in tqdm(items, desc="building index", unit="img", disable=not progress):
        try:
            face, _ = analyzer.embed_largest_face(path)
        except ToolkitError as error:
            skipped.append((path, reason_for(error, path)))
            continue
        names.append(name)
        embeddings.append(face.embedding)
        sources.append(os.path.basename(path))
    if not embeddings and not (existing is not None and len(existing)):
        raise ToolkitError(f"{img_dir or label_file}: no face found in any of {len(items)} images; index not written")
    if output is None:
        store = IndexFileStore(None, info=info)
    else:
        store = existing or open_store(output, info=info, create=True,
                                       replace=backend_of(output) == "index.bin" and not append)
    if embeddings:
        store.add([NewFace(name, embedding, source=source)
                   for name, embedding, source in zip(names, embeddings, sources)])
    return BuildReport(index=store, added=len(embeddings), skipped=skipped, output=output)


def _existing_gallery(analyzer, output: str, append: bool):
    """The gallery already at ``output`` when it must be checked before the slow work (None: there is none,
    or an index.bin that a build without --append simply replaces)."""
    backend = backend_of(output)
    if backend != "milvus":
        check_writable_folder(os.path.dirname(os.path.abspath(output)) or ".")
    if backend == "index.bin" and not append:
        return None
    try:
        store = open_store(output, create=False)
    except NotFoundError:
        return None
    try:
        store.check_compatible(analyzer.model_id, analyzer.gallery_info.embedding_size,
                               model_dir=analyzer.rec_model_dir)
    except IncompatibleGalleryError:
        store.close()
        raise
    if store.crop_mode != analyzer.crop_mode:
        store.close()
        raise IncompatibleGalleryError(
            f"{output}: gallery holds {store.crop_mode!r} face crops, but these would be {analyzer.crop_mode!r} "
            f"({CROP_MODE_FLAGS[analyzer.crop_mode]}); one gallery must use one kind, so rebuild it or match the "
            f"flags it was built with")
    if not append and len(store):
        count = len(store)
        store.close()
        raise ConflictError(f"{output}: gallery already holds {count} faces; add to it with --append, or remove it "
                            "first to rebuild")
    return store
