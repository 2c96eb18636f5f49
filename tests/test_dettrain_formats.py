"""WIDER FACE and RetinaFace annotation files: parsing, flags, round trips and one-line errors."""
import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from blazeface_paddle.training.annotations import (
    DetectionDataset,
    parse_retinaface,
    read_annotations,
    resolve_images_root,
    write_retinaface,
    write_wider,
)

WIDER = """0--Parade/0_Parade_marchingband_1_849.jpg
1
449 330 122 149 0 0 0 0 0 0
0--Parade/0_Parade_Parade_0_904.jpg
0
0 0 0 0 0 0 0 0 0 0
0--Parade/0_Parade_marchingband_1_117.jpg
3
69 359 50 36 1 0 0 0 0 1
227 382 56 43 1 0 1 0 0 0
296 305 44 26 1 0 0 1 0 0
"""

RETINA = """# 0--Parade/0_Parade_marchingband_1_849.jpg
449 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 515.031 412.83 0.0 485.255 425.893 0.0 538.002 431.929 0.0 0.82
# 0--Parade/0_Parade_Parade_0_904.jpg
361 98 263 339 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1.0
10 20 30 40
"""


def _write(tmp_path, text, name="labels.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_wider_format_boxes_counts_and_invalid_flag(tmp_path):
    items = read_annotations(_write(tmp_path, WIDER))
    assert [item.num_faces for item in items] == [1, 0, 3]
    np.testing.assert_allclose(items[0].boxes, [[449, 330, 571, 479]])
    assert items[1].boxes.shape == (0, 4)                       # count 0 + dummy line
    assert items[2].ignore.tolist() == [False, False, True]     # "invalid" column
    assert not items[0].keypoint_mask.any()                     # WIDER has no landmarks
    dropped = read_annotations(_write(tmp_path, WIDER), min_face_size=40, drop_ignored=True)
    assert [item.num_faces for item in dropped] == [1, 0, 1]   # 36-px face and invalid one gone


def test_retinaface_landmarks_map_to_mediapipe_keypoints(tmp_path):
    items = read_annotations(_write(tmp_path, RETINA))
    first = items[0]
    np.testing.assert_allclose(first.keypoints[0, 0], [488.906, 373.643], rtol=1e-6)   # image-left eye = right_eye
    np.testing.assert_allclose(first.keypoints[0, 3], [(485.255 + 538.002) / 2, (425.893 + 431.929) / 2], rtol=1e-6)
    assert first.keypoint_mask[0].tolist() == [True, True, True, True, False, False]   # no ears in RetinaFace
    assert items[1].num_faces == 2
    assert not items[1].keypoint_mask.any()                     # -1 landmarks and a box-only line
    np.testing.assert_allclose(items[1].boxes[1], [10, 20, 40, 60])


def test_six_point_round_trip_and_wider_round_trip(tmp_path):
    items = read_annotations(_write(tmp_path, RETINA))
    items[0].keypoints[0, 4:] = [[440, 390], [560, 392]]
    items[0].keypoint_mask[0, 4:] = True
    write_retinaface(str(tmp_path / "six.txt"), items)
    again = read_annotations(str(tmp_path / "six.txt"))
    np.testing.assert_allclose(again[0].keypoints, items[0].keypoints, atol=0.01)
    assert again[0].keypoint_mask.tolist() == items[0].keypoint_mask.tolist()
    wider = read_annotations(_write(tmp_path, WIDER))
    write_wider(str(tmp_path / "w.txt"), wider)
    back = read_annotations(str(tmp_path / "w.txt"))
    for a, b in zip(wider, back):
        np.testing.assert_allclose(a.boxes, b.boxes)
        assert a.ignore.tolist() == b.ignore.tolist()


@pytest.mark.parametrize("text, message", [
    ("a.jpg\n1\n1 2 3 4 0 0 0 0 0\n",
     "labels.txt:3: expected 10 values (x y w h blur expression illumination invalid occlusion pose), found 9"),
    ("a.jpg\nmany\n", "labels.txt:2: face count 'many' is not an integer"),
    ("a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n", "labels.txt:2: image 'a.jpg' declares 2 faces, file ends after 1 box lines"),
    ("a.jpg\n1\n1 2 x 4 0 0 0 0 0 0\n", "labels.txt:3: expected numbers, found '1 2 x 4 0 0 0 0 0 0'"),
    ("a.jpg\n", "labels.txt:1: image 'a.jpg' has no face-count line"),
    ("# a.jpg\n1 2 3 4 5\n",
     "labels.txt:2: expected 4, 20 or 23 values (x y w h [landmarks x y flag ...] [score]), found 5"),
    ("# a.jpg\n#\n", "labels.txt:2: '#' line without an image path"),
    # A RetinaFace body line before any '# path' line: the file does not start with '#', so it is read as
    # WIDER ('1 2 3 4' is taken for an image path) and the next line is not a face count.
    ("1 2 3 4\n# a.jpg\n", "labels.txt:2: face count '# a.jpg' is not an integer"),
])
def test_corrupt_lines_name_file_line_and_reason(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ToolkitError) as caught:
        read_annotations(path)
    assert str(caught.value) == str(tmp_path / message)     # the whole one-line message, path first


def test_retinaface_face_line_before_any_image_path_is_named():
    with pytest.raises(ToolkitError) as caught:
        parse_retinaface(["# a.jpg", "1 2 3 4", "#", "5 6 7 8"], "labels.txt")
    assert str(caught.value) == "labels.txt:3: '#' line without an image path"
    with pytest.raises(ToolkitError) as caught:
        parse_retinaface(["", "1 2 3 4", "# a.jpg"], "labels.txt")
    assert str(caught.value) == "labels.txt:2: face line before the first '# image path' line"


def test_missing_or_empty_files(tmp_path):
    cases = [(str(tmp_path / "nope.txt"), "annotation file not found"),
             (_write(tmp_path, "\n\n"), "no images in the annotation file"),
             (str(tmp_path / "bin.txt"), "not a text annotation file (not UTF-8)")]
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00garbage")
    for path, reason in cases:
        with pytest.raises(ToolkitError) as caught:
            read_annotations(path)
        assert str(caught.value) == f"{path}: {reason}"


def test_dataset_finds_images_folder_and_reports_unreadable_image(tmp_path):
    import cv2

    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "images" / "b.jpg").write_bytes(b"not an image")
    path = _write(tmp_path, "# a.jpg\n1 2 10 12\n# b.jpg\n")
    dataset = DetectionDataset(path)
    assert dataset.images_root == str(tmp_path / "images")
    image, (boxes, keypoints, mask) = dataset[0]
    assert image.shape == (20, 30, 3) and boxes.tolist() == [[1, 2, 11, 14]]
    with pytest.raises(ToolkitError, match="b.jpg: not a readable image"):
        dataset[1]
    with pytest.raises(ToolkitError, match="cannot find its images"):
        resolve_images_root(_write(tmp_path, "# zz.jpg\n", "other.txt"), read_annotations(str(tmp_path / "other.txt")))
