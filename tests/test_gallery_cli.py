"""test_recognition.py with every gallery backend: import, append, recognise against gallery.db and milvus-lite,
export back to index.bin; a database is never wiped by a build without --append."""
import json

import pytest

from arcface_paddle.cli import recognize
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.stores import open_store
from arcface_paddle.stores.index_format import load_index


def names_in(output_dir) -> list:
    return [face["name"] for face in json.loads((output_dir / "group.json").read_text())["faces"]]


def test_recognition_cli_builds_and_matches_any_backend(repo_root, faces_dir, tmp_path, capsys):
    demo_index = str(repo_root / "demo" / "index.bin")
    group = str(repo_root / "demo" / "query" / "group.jpg")
    database = str(tmp_path / "data" / "gallery.db")
    assert recognize.main(["--import_index", demo_index, "--build_index", database]) == 0
    assert recognize.main(["--import_index", demo_index, "--build_index", database, "--append"]) == 0
    assert "imported 0 faces" in capsys.readouterr().out                  # the same rows are not added twice
    label = tmp_path / "new_people.txt"
    label.write_text(f"{faces_dir / 'astronaut.png'}\tEileen Collins\n", encoding="utf-8")
    assert recognize.main(["--build_index", database, "--append", "--label", str(label)]) == 0
    with open_store(database, create=False) as store:
        assert [(s.name, s.faces) for s in store.subjects()] == [("Eileen Collins", 1), ("biden", 1),
                                                                   ("grace_hopper", 1), ("obama", 2)]
        assert store.subject_faces("Eileen Collins")[0].source == "astronaut.png"
    assert recognize.main(["--input", group, "--index", database, "--output", str(tmp_path / "out")]) == 0
    assert names_in(tmp_path / "out") == ["obama", "Eileen Collins", "grace_hopper"]

    milvus = f"milvus-lite:{tmp_path / 'gallery.milvus.db'}"
    assert recognize.main(["--import_index", database, "--build_index", milvus]) == 0
    assert recognize.main(["--input", group, "--index", milvus, "--output", str(tmp_path / "out2")]) == 0
    assert names_in(tmp_path / "out2") == ["obama", "Eileen Collins", "grace_hopper"]

    exported = tmp_path / "exported.bin"
    assert recognize.main(["--import_index", milvus, "--build_index", str(exported)]) == 0
    assert sorted(load_index(str(exported)).names) == ["Eileen Collins", "biden", "grace_hopper", "obama", "obama"]

    with pytest.raises(ToolkitError, match="already holds 5 faces; add to it with --append"):
        recognize.main(["--build_index", database, "--img_dir", str(repo_root / "demo" / "gallery")])
    with open_store(database, create=False) as store:
        assert len(store) == 5
