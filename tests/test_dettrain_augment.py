"""Augmentation moves boxes and keypoints with the pixels; flips swap right/left keypoints."""
import numpy as np

from blazeface_paddle.training.augment import (
    DetectionAugment,
    crop,
    horizontal_flip,
    letterbox_faces,
    photometric_distort,
    random_crop_keeping_faces,
)


def _marked_image():
    """A 100×160 image with a coloured dot at each keypoint of one face, so pixels can be checked."""
    image = np.zeros((100, 160, 3), np.uint8)
    boxes = np.array([[40, 20, 100, 90]], np.float32)
    keypoints = np.array([[[55, 40], [85, 40], [70, 55], [70, 72], [42, 50], [98, 50]]], np.float32)
    mask = np.ones((1, 6), bool)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    for (x, y), colour in zip(keypoints[0].astype(int), colours):
        image[y - 1:y + 2, x - 1:x + 2] = colour
    return image, (boxes, keypoints, mask), colours


def _colour_at(image, point):
    x, y = int(round(point[0])), int(round(point[1]))
    return tuple(int(v) for v in image[y, x])


def test_flip_swaps_eyes_and_ears_and_keeps_pixels():
    image, faces, colours = _marked_image()
    flipped, (boxes, keypoints, mask) = horizontal_flip(image, faces)
    np.testing.assert_allclose(boxes, [[160 - 100, 20, 160 - 40, 90]])
    # the person's right eye is now the dot that was the left eye, mirrored
    np.testing.assert_allclose(keypoints[0, 0], [160 - 85, 40])
    np.testing.assert_allclose(keypoints[0, 4], [160 - 98, 50])
    assert keypoints[0, 0, 0] < keypoints[0, 1, 0]              # right eye stays on the image left
    # the flipped keypoint x + 1 hits the mirrored pixel centre (pixel i ↔ W-1-i)
    assert _colour_at(flipped, keypoints[0, 0] - [1, 0]) == colours[1]
    assert _colour_at(flipped, keypoints[0, 5] - [1, 0]) == colours[4]


def test_crop_keeps_centred_faces_clips_boxes_and_drops_outside_keypoints():
    image, faces, colours = _marked_image()
    cropped, (boxes, keypoints, mask) = crop(image, faces, 50, 5, 60, 80)
    assert cropped.shape == (80, 60, 3)
    np.testing.assert_allclose(boxes, [[0, 15, 50, 80]])
    assert mask[0].tolist() == [True, True, True, True, False, True]    # right ear (x=42) cut away
    assert _colour_at(cropped, keypoints[0, 1]) == colours[1]
    _, (gone, _, _) = crop(image, faces, 0, 0, 30, 30)                 # centre (70, 55) outside
    assert len(gone) == 0


def test_random_crop_always_keeps_a_face():
    image, faces, colours = _marked_image()
    rng = np.random.default_rng(3)
    for _ in range(20):
        cropped, (boxes, keypoints, mask) = random_crop_keeping_faces(image, faces, rng, scale_range=(0.4, 1.0))
        assert len(boxes) == 1 and cropped.shape[0] == cropped.shape[1]
        for point, present, colour in zip(keypoints[0], mask[0], colours):
            if present:
                assert _colour_at(cropped, point) == colour


def test_letterbox_maps_faces_onto_the_resized_pixels():
    image, faces, colours = _marked_image()
    canvas, (boxes, keypoints, mask), placement = letterbox_faces(image, faces, 128)
    assert canvas.shape == (128, 128, 3) and placement.pad_x == 0 and placement.pad_y == 24
    np.testing.assert_allclose(boxes[0], faces[0][0] * 0.8 + [0, 24, 0, 24], atol=0.01)
    # back to original pixels through the predictor's own mapping
    np.testing.assert_allclose(placement.to_pixels(boxes / 128), faces[0], atol=0.01)
    red = canvas[..., 0].astype(int) - canvas[..., 1] - canvas[..., 2]
    y, x = np.unravel_index(np.argmax(red), red.shape)
    assert abs(x - keypoints[0, 0, 0]) <= 1.5 and abs(y - keypoints[0, 0, 1]) <= 1.5


def test_photometric_changes_colours_only_and_full_transform_is_deterministic():
    image, faces, _ = _marked_image()
    image = image + 60
    out = photometric_distort(image, np.random.default_rng(0), probability=1.0)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    augment = DetectionAugment(input_size=128)
    a = augment(image, faces, np.random.default_rng(7))
    b = augment(image, faces, np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1][0], b[1][0])
    assert a[0].shape == (128, 128, 3)
