"""Running a FaceAnalyzer over an image, a folder of images or a video, writing drawn results + JSON.

A folder streams through :meth:`FaceAnalyzer.analyze_batch`: photos are decoded ahead on worker threads and
drawn/encoded/written behind on a writer thread while the models run, with a bounded number of images in
flight (memory does not grow with the folder).  Videos and live sources: :mod:`arcface_paddle.pipeline.video`.

Every output path is known before the first model runs: one that is an input file (``--output`` the input's
own folder) is refused then, so a user's photo is never replaced by its drawn copy.
"""
from __future__ import annotations

import os
from collections import Counter

from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError, reason_for
from arcface_paddle.core.images import is_image_path, list_images, read_image
from arcface_paddle.core.safe_io import check_writable_folder, refuse_overwriting_inputs
from arcface_paddle.pipeline.media_io import VideoReader, is_live_source, is_video_path, write_image, write_json
from arcface_paddle.pipeline.results import RunReport, RunResult
from arcface_paddle.pipeline.streaming import OrderedWorker, batched, ordered_map
from arcface_paddle.pipeline.video import VideoOptions, process_video

DECODE_WORKERS = 2       # threads decoding photos ahead of the detector (2 cores: more only contend)


def _outputs(input_path: str, output_dir: str, extension: str | None = None,
             stem: str | None = None) -> tuple[str, str]:
    own_stem, original = os.path.splitext(os.path.basename(input_path))
    stem = stem or own_stem
    return os.path.join(output_dir, stem + (extension or original)), os.path.join(output_dir, stem + ".json")


def image_outputs(path: str, output_dir: str, stem: str | None = None) -> tuple[str, str]:
    """Where an image's drawn copy (``STEM.<ext>``: a .jpg/.png input's extension, else .png) and JSON go."""
    return _outputs(path, output_dir, None if path.lower().endswith((".jpg", ".jpeg", ".png")) else ".png",
                    stem=stem)


def save_image_result(analyzer, path: str, image, faces, output_dir: str, stem: str | None = None) -> RunResult:
    """Write ``STEM.<ext>`` (drawn) and ``STEM.json`` for one analysed image."""
    drawn_path, json_path = image_outputs(path, output_dir, stem)
    write_image(drawn_path, analyzer.draw(image, faces))
    write_json(json_path, {"input": path, "image_size": [image.shape[1], image.shape[0]],
                           "faces": [face.to_dict() for face in faces]})
    for face in faces:
        face.embedding = None      # a big folder would otherwise keep every embedding in the report
    return RunResult(path, drawn_path, json_path, faces)


def process_image(analyzer, path: str, output_dir: str, stem: str | None = None) -> RunResult:
    """Analyse one image; write ``STEM.<ext>`` (drawn; .png for formats other than jpg/png) and ``STEM.json``."""
    image = read_image(path)
    return save_image_result(analyzer, path, image, analyzer.analyze(image), output_dir, stem=stem)


def _read_for_batch(path: str) -> tuple:
    try:
        return path, read_image(path), None
    except ToolkitError as error:
        return path, None, reason_for(error, path)


def process_folder(analyzer, folder: str, output_dir: str, progress: bool = True) -> RunReport:
    """Every image of ``folder`` through ``analyzer.analyze_batch`` (``analyzer.batch_size`` at a time), decoding
    ahead and writing behind on threads; the same outputs as :func:`process_image` on each file.  Bad files
    are collected in ``failed`` and the folder goes on."""
    jobs = dict(_folder_jobs(folder))
    paths = list(jobs)

    def save(path, image, faces):
        try:
            return save_image_result(analyzer, path, image, faces, output_dir, stem=jobs[path]), None
        except ToolkitError as error:
            return None, (path, reason_for(error, path))

    results, failed = [], []

    def collect(done, bar):
        for result, failure in done:
            results.append(result) if failure is None else failed.append(failure)
            bar.update(1)

    size = analyzer.batch_size
    decoded = ordered_map(_read_for_batch, paths, workers=DECODE_WORKERS, depth=2 * size)
    with tqdm(total=len(paths), desc="images", unit="img", disable=not progress) as bar, \
            OrderedWorker(depth=size) as writer:
        try:
            for batch in batched(decoded, size):
                for path, _, reason in batch:
                    if reason is not None:
                        failed.append((path, reason))
                        bar.update(1)
                readable = [(path, image) for path, image, reason in batch if reason is None]
                for (path, image), faces in zip(readable, analyzer.analyze_batch([image for _, image in readable])):
                    collect(writer.submit(save, path, image, faces), bar)
            collect(writer.drain(), bar)
        finally:
            decoded.close()
    order = {path: number for number, path in enumerate(paths)}
    failed.sort(key=lambda item: order[item[0]])
    return RunReport(results, failed)


def _folder_jobs(folder: str) -> list[tuple[str, str | None]]:
    """(image, output stem) of a folder: a.jpg and a.png would both write a.json, so such files keep their
    extension in the stem."""
    paths = list_images(folder)
    stems = Counter(os.path.splitext(os.path.basename(path))[0] for path in paths)
    jobs = []
    for path in paths:
        stem, extension = os.path.splitext(os.path.basename(path))
        jobs.append((path, f"{stem}_{extension[1:]}" if stems[stem] > 1 else None))
    return jobs


def _planned_outputs(input_path: str, output_dir: str) -> tuple[list[str], list[str]]:
    """(every file the run would write, every input file)."""
    if os.path.isdir(input_path):
        jobs = _folder_jobs(input_path)
        return [out for path, stem in jobs for out in image_outputs(path, output_dir, stem)], [p for p, _ in jobs]
    if is_video_path(input_path):
        return list(_outputs(input_path, output_dir)), [input_path]
    return list(image_outputs(input_path, output_dir)), [input_path]


def check_input(input_path: str, output_dir: str | None = None) -> None:
    """Fail fast (before models load) on a missing input, an empty folder, a video or image that cannot be read,
    and on an ``output_dir`` where a result would replace an input."""
    if os.path.isdir(input_path):
        list_images(input_path)
    elif is_live_source(input_path):
        return                      # a camera or stream is opened when the run starts
    elif not os.path.exists(input_path):
        raise ToolkitError(f"{input_path}: input not found")
    elif is_video_path(input_path):
        VideoReader(input_path).close()
    else:
        read_image(input_path)
    if output_dir is not None:
        refuse_overwriting_inputs(*_planned_outputs(input_path, output_dir))


def run_on_input(analyzer, input_path: str, output_dir: str, progress: bool = True,
                 video_options: VideoOptions | None = None) -> RunReport:
    """Process ``input_path`` (image, folder of images, video file, camera index or stream URL) into
    ``output_dir``.

    A single bad file raises ToolkitError; in a folder, bad files are collected in ``failed`` and the batch
    goes on.  ``video_options``: tracking and recognition schedule for videos (default: tracking on).
    """
    check_writable_folder(output_dir)
    if os.path.exists(input_path):
        refuse_overwriting_inputs(*_planned_outputs(input_path, output_dir))
    if os.path.isdir(input_path):
        return process_folder(analyzer, input_path, output_dir, progress=progress)
    if is_live_source(input_path) or (os.path.exists(input_path) and is_video_path(input_path)):
        return RunReport([process_video(analyzer, input_path, output_dir, video_options or VideoOptions(),
                                        progress=progress)], [])
    if not os.path.exists(input_path):
        raise ToolkitError(f"{input_path}: input not found")
    if is_image_path(input_path) or os.path.isfile(input_path):
        return RunReport([process_image(analyzer, input_path, output_dir)], [])
    raise ToolkitError(f"{input_path}: not an image, folder or video")
