"""``label.txt`` (``relative/path<TAB>label`` per line) and ``classes.txt`` (one class name per line)."""
from __future__ import annotations

import os

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import IMAGE_EXTENSIONS
from arcface_paddle.core.safe_io import atomic_write

LABEL_FILE = "label.txt"
CLASSES_FILE = "classes.txt"


def read_label_file(path: str | os.PathLike) -> list[tuple[str, int]]:
    """Entries ``(relative_path, label)``; a malformed line raises ToolkitError naming file and line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: label file not found")
    entries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            # tab separates path and label (paths may hold spaces); plain whitespace is accepted too
            parts = line.rsplit("\t", 1) if "\t" in line else line.rsplit(None, 1)
            if len(parts) != 2:
                raise ToolkitError(f"{path}:{number}: expected 'path<TAB>label', got {line!r}")
            rel, label = parts[0].strip(), parts[1].strip()
            try:
                value = int(label)
            except ValueError:
                raise ToolkitError(f"{path}:{number}: label {label!r} is not an integer") from None
            if value < 0:
                raise ToolkitError(f"{path}:{number}: negative label {value}")
            entries.append((rel, value))
    if not entries:
        raise ToolkitError(f"{path}: label file is empty")
    return entries


def write_label_file(path: str | os.PathLike, entries) -> None:
    with atomic_write(path, "w") as handle:
        for rel, label in entries:
            handle.write(f"{rel}\t{int(label)}\n")


def read_classes(path: str | os.PathLike) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\r\n") for line in handle if line.strip()]


def write_classes(path: str | os.PathLike, names) -> None:
    with atomic_write(path, "w") as handle:
        for name in names:
            handle.write(f"{name}\n")


def scan_identity_tree(root) -> tuple[list[tuple[str, int]], list[str]]:
    """``root/<person>/**/<image>`` → (entries (relative path, label), class names); labels follow sorted names."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ToolkitError(f"{root}: image folder not found")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if not classes:
        raise ToolkitError(f"{root}: no identity folders (expected root/<person>/<image>; a flat folder needs a label file)")
    entries = []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, name)):
            dirnames.sort()
            for filename in sorted(filenames):
                if filename.lower().endswith(IMAGE_EXTENSIONS):
                    rel = os.path.relpath(os.path.join(dirpath, filename), root)
                    entries.append((rel.replace(os.sep, "/"), label))
    if not entries:
        raise ToolkitError(f"{root}: identity folders hold no images ({', '.join(IMAGE_EXTENSIONS)})")
    return entries, classes
