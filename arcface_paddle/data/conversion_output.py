"""The output folder of a conversion: refused when it holds files (unless overwriting), checked writable
before the work, and restored when the run fails — the files the run wrote and the folders it made are
removed again, so a failed or interrupted conversion (a full disk, Ctrl-C, a bad record) leaves the folder as
it was and a rerun starts clean.
"""
from __future__ import annotations

import contextlib
import os

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import check_writable_folder
from arcface_paddle.data.label_file import LABEL_FILE


def prepare_output(folder: str, overwrite: bool, subfolder: str | None = None) -> list:
    """Refuse to mix a new conversion into a folder that already holds files, unless ``overwrite``; create
    ``folder`` (and ``folder/subfolder``) and return the folders this created.

    With ``overwrite`` the old ``label.txt`` goes first, so an interrupted run cannot leave an old index
    pointing at a mix of old and new files.
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ToolkitError(f"{folder}: output exists and is a file, not a folder")
    if os.path.isdir(folder) and os.listdir(folder):
        if not overwrite:
            raise ToolkitError(f"{folder}: output folder is not empty (choose a new folder, or --overwrite)")
        label = os.path.join(folder, LABEL_FILE)
        if os.path.exists(label):
            os.unlink(label)
    created = []
    for path in [folder] + ([os.path.join(folder, subfolder)] if subfolder else []):
        if not os.path.isdir(path):
            try:
                os.makedirs(path)
            except OSError as error:
                raise ToolkitError(f"{path}: cannot create the output folder ({error.strerror or error})") from None
            created.append(path)
    try:
        check_writable_folder(path)              # a read-only output fails now, not at the first shard
    except ToolkitError:
        for folder in created[::-1]:
            os.rmdir(folder)
        raise
    return created


@contextlib.contextmanager
def undone_on_failure(output: str, created: list, written_paths):
    """On any failure, remove what this run wrote (``written_paths()``: every file it may have written), the
    folders left empty by that and the ``created`` ones, then re-raise — a ToolkitError saying so."""
    try:
        yield
    except BaseException as error:
        removed, parents = 0, set()
        for path in written_paths():
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                os.unlink(path)
                removed += 1
                parents.add(os.path.dirname(path))
        for folder in sorted(parents, key=len, reverse=True) + created[::-1]:
            while os.path.abspath(folder).startswith(os.path.abspath(output)):
                try:
                    os.rmdir(folder)             # only succeeds on an empty folder
                except OSError:
                    break
                folder = os.path.dirname(folder)
        if isinstance(error, ToolkitError):
            raise ToolkitError(f"{error} (removed the {removed} files this run had written; {output} is as "
                               f"before)") from None
        raise
