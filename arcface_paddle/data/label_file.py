"""``label.txt`` (``relative/path<TAB>label`` per line) and ``classes.txt`` (one class name per line).

Both are line-based, so a name holding a tab or a line break would split or shift every entry after it:
such names are refused (naming the folder or file) when a tree is scanned and again when a file is written.
Labels are whole numbers in ``[0, MAX_LABEL]``.
"""
from __future__ import annotations

import os

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.finite_numbers import whole_number
from arcface_paddle.core.images import IMAGE_EXTENSIONS
from arcface_paddle.core.safe_io import atomic_write, iter_text_lines

LABEL_FILE = "label.txt"
CLASSES_FILE = "classes.txt"
MAX_LABEL = 2 ** 31 - 1          # int64 in training; 2 billion identities is more than any dataset has
_LINE_BREAKERS = ("\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def check_line_safe(name: str, source: str, what: str = "name") -> str:
    """``name`` unchanged if it holds no tab or line break (str.splitlines breaks on all of these)."""
    if any(char in name for char in _LINE_BREAKERS):
        raise ToolkitError(f"{source}: {what} {name!r} holds a tab or line break, which would break {LABEL_FILE} / "
                           f"{CLASSES_FILE}; rename it")
    return name


def read_label_file(path: str | os.PathLike) -> list[tuple[str, int]]:
    """Entries ``(relative_path, label)``; a malformed line raises ToolkitError naming file and line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: label file not found")
    entries = []
    for number, line in iter_text_lines(path, "label file"):
        if not line.strip():
            continue
        # tab separates path and label (paths may hold spaces); plain whitespace is accepted too
        parts = line.rsplit("\t", 1) if "\t" in line else line.rsplit(None, 1)
        if len(parts) != 2:
            raise ToolkitError(f"{path}:{number}: expected 'path<TAB>label', got {line[:80]!r}")
        rel, label = parts[0].strip(), parts[1].strip()
        value = whole_number(label, f"{path}:{number}", "label", MAX_LABEL,
                             " (labels number the identities 0, 1, 2, ...)")
        entries.append((rel, value))
    if not entries:
        raise ToolkitError(f"{path}: label file is empty")
    return entries


def check_entries_inside(entries, root: str, source: str) -> None:
    """Dataset entries are relative paths inside ``root``: an absolute path or a ``..`` would read another
    dataset's (or any) file.  A fast textual check, fit for millions of entries."""
    for rel, _ in entries:
        if rel.startswith(("/", "\\")) or ".." in rel or (len(rel) > 1 and rel[1] == ":"):
            parts = rel.replace("\\", "/").split("/")
            if rel.startswith(("/", "\\")) or ".." in parts or (len(rel) > 1 and rel[1] == ":"):
                raise ToolkitError(f"{source}: refusing entry {rel!r}: entries are paths inside {root} "
                                   f"(no absolute paths, no '..')")


def write_label_file(path: str | os.PathLike, entries) -> None:
    with atomic_write(path, "w") as handle:
        for rel, label in entries:
            handle.write(f"{check_line_safe(rel, os.fspath(path), 'path')}\t{int(label)}\n")


def read_classes(path: str | os.PathLike) -> list[str]:
    return [line for _, line in iter_text_lines(path, "classes file") if line.strip()]


def write_classes(path: str | os.PathLike, names) -> None:
    with atomic_write(path, "w") as handle:
        for name in names:
            handle.write(f"{check_line_safe(name, os.fspath(path), 'class name')}\n")


def scan_identity_tree(root) -> tuple[list[tuple[str, int]], list[str]]:
    """``root/<person>/**/<image>`` → (entries (relative path, label), class names); labels follow sorted names."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ToolkitError(f"{root}: image folder not found")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    for name in classes:
        check_line_safe(name, os.path.join(root, name), "folder name")
    if not classes:
        raise ToolkitError(f"{root}: no identity folders (expected root/<person>/<image>; a flat folder needs a label file)")
    entries = []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, name)):
            dirnames.sort()
            for filename in sorted(filenames):
                if filename.lower().endswith(IMAGE_EXTENSIONS):
                    rel = os.path.relpath(os.path.join(dirpath, filename), root)
                    entries.append((check_line_safe(rel.replace(os.sep, "/"), os.path.join(dirpath, filename),
                                                    "file name"), label))
    if not entries:
        raise ToolkitError(f"{root}: identity folders hold no images ({', '.join(IMAGE_EXTENSIONS)})")
    return entries, classes
