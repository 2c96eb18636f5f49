"""Running a FaceAnalyzer over an image, a folder of images or a video, writing drawn results + JSON."""
from __future__ import annotations

import dataclasses
import os
from collections import Counter

from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError, reason_for
from arcface_paddle.core.images import is_image_path, list_images, read_image
from arcface_paddle.core.safe_io import check_writable_folder
from arcface_paddle.pipeline.media_io import VideoReader, is_video_path, video_writer, write_image, write_json


@dataclasses.dataclass
class RunResult:
    input: str
    output: str                  # drawn image or video
    json: str                    # boxes, keypoints, scores, names, similarities
    faces: list                  # list[Face] (for a video: the faces of every frame, in order, without embeddings)
    frames: int | None = None    # number of frames for a video


@dataclasses.dataclass
class RunReport:
    results: list                # RunResult per processed file
    failed: list                 # (path, reason) for files that could not be processed


def _outputs(input_path: str, output_dir: str, extension: str | None = None,
             stem: str | None = None) -> tuple[str, str]:
    own_stem, original = os.path.splitext(os.path.basename(input_path))
    stem = stem or own_stem
    return os.path.join(output_dir, stem + (extension or original)), os.path.join(output_dir, stem + ".json")


def process_image(analyzer, path: str, output_dir: str, stem: str | None = None) -> RunResult:
    """Analyse one image; write ``STEM.<ext>`` (drawn; .png for formats other than jpg/png) and ``STEM.json``."""
    image = read_image(path)
    faces = analyzer.analyze(image)
    drawn_path, json_path = _outputs(path, output_dir, None if path.lower().endswith((".jpg", ".jpeg", ".png"))
                                     else ".png", stem=stem)
    write_image(drawn_path, analyzer.draw(image, faces))
    write_json(json_path, {"input": path, "image_size": [image.shape[1], image.shape[0]],
                           "faces": [face.to_dict() for face in faces]})
    return RunResult(path, drawn_path, json_path, faces)


def process_video(analyzer, path: str, output_dir: str, progress: bool = True) -> RunResult:
    reader = VideoReader(path)
    drawn_path, json_path = _outputs(path, output_dir)
    frames, all_faces = [], []
    with video_writer(drawn_path, reader.fps, reader.size_wh) as write, \
            tqdm(total=reader.frame_count or None, desc=os.path.basename(path), unit="frame",
                 disable=not progress) as bar:
        for number, frame in enumerate(reader):
            faces = analyzer.analyze(frame)
            write(analyzer.draw(frame, faces))
            frames.append({"frame": number, "faces": [face.to_dict() for face in faces]})
            for face in faces:
                face.embedding = None     # a long video would otherwise keep every embedding in memory
            all_faces.extend(faces)
            bar.update(1)
    write_json(json_path, {"input": path, "fps": reader.fps, "frame_size": list(reader.size_wh), "frames": frames})
    return RunResult(path, drawn_path, json_path, all_faces, frames=len(frames))


def check_input(input_path: str) -> None:
    """Fail fast (before models load) on a missing input, an empty folder, a video or image that cannot be read."""
    if os.path.isdir(input_path):
        list_images(input_path)
    elif not os.path.exists(input_path):
        raise ToolkitError(f"{input_path}: input not found")
    elif is_video_path(input_path):
        VideoReader(input_path).close()
    else:
        read_image(input_path)


def run_on_input(analyzer, input_path: str, output_dir: str, progress: bool = True) -> RunReport:
    """Process ``input_path`` (image, folder of images, or video) into ``output_dir``.

    A single bad file raises ToolkitError; in a folder, bad files are collected in ``failed`` and the batch
    goes on.
    """
    check_writable_folder(output_dir)
    if os.path.isdir(input_path):
        results, failed = [], []
        paths = list_images(input_path)
        # a.jpg and a.png in one folder would both write a.json: such files keep their extension in the name.
        stems = Counter(os.path.splitext(os.path.basename(path))[0] for path in paths)
        for path in tqdm(paths, desc="images", unit="img", disable=not progress):
            stem, extension = os.path.splitext(os.path.basename(path))
            try:
                results.append(process_image(analyzer, path, output_dir,
                                             stem=f"{stem}_{extension[1:]}" if stems[stem] > 1 else None))
            except ToolkitError as error:
                failed.append((path, reason_for(error, path)))
        return RunReport(results, failed)
    if not os.path.exists(input_path):
        raise ToolkitError(f"{input_path}: input not found")
    if is_video_path(input_path):
        return RunReport([process_video(analyzer, input_path, output_dir, progress=progress)], [])
    if is_image_path(input_path) or os.path.isfile(input_path):
        return RunReport([process_image(analyzer, input_path, output_dir)], [])
    raise ToolkitError(f"{input_path}: not an image, folder or video")
