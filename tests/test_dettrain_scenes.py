"""Synthetic detection scenes: deterministic, faces where the boxes say, readable by the WIDER reader."""
import numpy as np

from blazeface_paddle.training.annotations import read_annotations, resolve_images_root
from blazeface_paddle.training.synthetic_scenes import SyntheticScenes, face_box_from_keypoints


def test_face_box_from_upright_keypoints():
    # eyes at y=40 (x 40, 60), mouth at y=60 → d = 20; ears at x 28 and 72
    points = np.array([[40, 40], [60, 40], [50, 50], [50, 60], [28, 44], [72, 44]], np.float32)
    box = face_box_from_keypoints(points)
    centre_y = 40 + 0.45 * 20
    np.testing.assert_allclose(box, [28, centre_y - 23, 72, centre_y + 23], atol=1e-4)


def test_scenes_are_deterministic_and_seeds_differ():
    scenes = SyntheticScenes(seed=0)
    image_a, faces_a = scenes.render(3)
    image_b, faces_b = SyntheticScenes(seed=0).render(3)
    assert np.array_equal(image_a, image_b) and np.array_equal(faces_a.boxes, faces_b.boxes)
    image_c, _ = SyntheticScenes(seed=1).render(3)
    assert not np.array_equal(image_a, image_c)


def test_faces_lie_inside_their_boxes_at_many_sizes():
    scenes = SyntheticScenes(seed=2, image_size=(96, 160), faces_per_scene=(1, 3), face_height=(12, 70))
    heights, count = [], 0
    for index in range(30):
        image, faces = scenes.render(index)
        assert image.shape == (96, 160, 3)
        count += faces.num_faces
        for box, points, mask in zip(faces.boxes, faces.keypoints, faces.keypoint_mask):
            assert 0 <= box[0] < box[2] <= 160 and 0 <= box[1] < box[3] <= 96
            inside = points[mask]
            assert ((inside >= box[:2] - 1) & (inside <= box[2:] + 1)).all()
            heights.append(box[3] - box[1])
    assert count >= 40 and min(heights) < 20 and max(heights) > 50


def test_written_scenes_read_back_through_the_wider_reader(tmp_path):
    # Large faces in a small image: some are cut by the border, so some keypoints fall outside the image and
    # are masked out (scene 6 of seed 4) — the round trip must keep exactly which ones.
    scenes = SyntheticScenes(seed=4, image_size=(96, 160), faces_per_scene=(1, 3), face_height=(30, 80))
    path = scenes.write(str(tmp_path / "set"), 8)
    annotations = read_annotations(path)
    assert len(annotations) == 8
    root = resolve_images_root(path, annotations)
    masked_out = 0
    for index, item in enumerate(annotations):
        _, original = scenes.render(index)
        np.testing.assert_allclose(item.boxes, original.boxes, atol=0.01)
        np.testing.assert_allclose(item.keypoints, original.keypoints, atol=0.01)
        np.testing.assert_array_equal(item.keypoint_mask, original.keypoint_mask)
        masked_out += int((~original.keypoint_mask).sum())
        assert (tmp_path / "set" / item.image_path).is_file() and root == str(tmp_path / "set")
    assert masked_out > 0                      # the mask comparison above compared something non-trivial
    wider = read_annotations(scenes.write(str(tmp_path / "wider"), 3, layout="wider"))
    assert [item.num_faces for item in wider] == [item.num_faces for item in annotations[:3]]
