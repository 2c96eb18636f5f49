"""Detect, align, recognise and draw faces in images, folders or videos; build a gallery index.

    python test_recognition.py --det --rec --index=demo/index.bin --input=demo/query/group.jpg --output=./output
    python test_recognition.py --index demo/index.bin --input photos/ --batch_size 8      # a folder, batched
    python test_recognition.py --index demo/index.bin --input clip.mp4                    # tracked video
    python test_recognition.py --index demo/index.bin --input 0                           # camera 0, Ctrl-C stops
    python test_recognition.py --build_index demo/index.bin --img_dir demo/gallery
    python test_recognition.py --import_index reference_index.bin --build_index index.bin
    python test_recognition.py --build_index data/gallery.db --append --img_dir new_people/
    python test_recognition.py --import_index demo/index.bin --build_index data/gallery.db --append

A gallery is an index.bin, a SQLite gallery.db or a Milvus URI (milvus://host:port/collection,
milvus-lite:PATH); --import_index copies between any two (and reads reference-toolkit pickles).

Without --det/--rec both run. Models default to the shipped ones in inference_model/.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from prettytable import PrettyTable

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.cli.device_options import add_device_arguments, device_options
from arcface_paddle.cli.model_options import add_model_arguments, model_options
from arcface_paddle.core.errors import EXIT_INTERRUPTED, ToolkitError, run_cli
from arcface_paddle.core.safe_io import check_output_file, check_writable_folder, refuse_overwriting_inputs
from arcface_paddle.pipeline.analyzer import FaceAnalyzer
from arcface_paddle.pipeline.gallery_builder import items_from_label_file, items_from_tree
from arcface_paddle.pipeline.media_io import is_live_source
from arcface_paddle.pipeline.runner import check_input, run_on_input
from arcface_paddle.pipeline.tracking import DEFAULT_REC_EVERY, DEFAULT_TRACK_BUFFER, DEFAULT_WEAK_MARGIN
from arcface_paddle.pipeline.video import VideoOptions
from arcface_paddle.stores import GalleryInfo, backend_of, open_store, read_gallery
from blazeface_paddle.inference.predictor import DEFAULT_BATCH_SIZE

# paddle warns about a C++ build cache at import; it means nothing to someone running inference.
warnings.filterwarnings("ignore", message="No ccache found")
# Our own warnings (e.g. a font without glyphs for a name) read as one line, like our errors.
warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--det", action="store_true", help="run face detection (alone: draw detections only)")
    parser.add_argument("--rec", action="store_true", help="run recognition (alone: the whole image is one face)")
    parser.add_argument("--input", help="image, folder of images, video (.mp4/.avi/.mov/.mkv), camera index (0) "
                        "or stream URL (rtsp://, http://)")
    parser.add_argument("--output", default="./output", help="folder for drawn results and JSON (default ./output)")
    parser.add_argument("--index", help="gallery to match faces against: index.bin, gallery.db or a Milvus URI")
    parser.add_argument("--build_index", metavar="OUT", help="build (or with --append, extend) the gallery OUT: "
                        "index.bin, gallery.db (SQLite) or a Milvus URI")
    parser.add_argument("--img_dir", help="with --build_index: identity folders DIR/<name>/*.jpg (or the base of --label)")
    parser.add_argument("--label", help="with --build_index: label file of 'path<TAB>name' lines")
    parser.add_argument("--append", action="store_true", help="with --build_index: add to an existing gallery "
                        "(safe with other writers of a gallery.db)")
    parser.add_argument("--import_index", metavar="SRC", help="with --build_index: copy the faces of gallery SRC "
                        "(any backend), or convert a reference-toolkit (pickled) index.bin, stating that "
                        "--rec_model produced its features")
    add_model_arguments(parser)
    parser.add_argument("--cpu_threads", type=int, default=2)
    add_device_arguments(parser)
    parser.add_argument("--font", help="TTF/OTF font for labels (use a CJK font for Chinese names)")
    parser.add_argument("--search_backend", choices=("numpy", "faiss"), default="numpy",
                        help="gallery search: exact numpy (default) or faiss (pip install faiss-cpu)")
    parser.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"images or video frames per detector run (default {DEFAULT_BATCH_SIZE})")
    video = parser.add_argument_group("video and live sources")
    video.add_argument("--no-track", dest="track", action="store_false",
                       help="recognise every face of every frame on its own instead of tracking faces")
    video.add_argument("--rec_every", type=int, default=DEFAULT_REC_EVERY,
                       help=f"re-recognise a tracked face every N frames (default {DEFAULT_REC_EVERY})")
    video.add_argument("--weak_margin", type=float, default=DEFAULT_WEAK_MARGIN,
                       help="re-recognise on every frame while a track's similarity is within this of "
                            f"--rec_thresh (default {DEFAULT_WEAK_MARGIN})")
    video.add_argument("--track_buffer", type=int, default=DEFAULT_TRACK_BUFFER,
                       help=f"frames a lost face is remembered to resume its track (default {DEFAULT_TRACK_BUFFER})")
    return parser.parse_args(argv)


def build_or_import(args, analyzer) -> int:
    if args.import_index:
        index = read_gallery(args.import_index, reference_model_id=analyzer.model_id,
                             reference_embedding_size=analyzer.rec_config.embedding_size)
        replace = backend_of(args.build_index) == "index.bin" and not args.append
        info = GalleryInfo(index.model_id, index.crop_mode, index.embedding_size)
        with open_store(args.build_index, info=info, create=True, replace=replace) as store:
            added = store.import_index(index)
            print(f"imported {added} faces of {len(index.identities)} identities → {args.build_index} "
                  f"(now {len(store)} faces)")
        return 0
    report = analyzer.build_index(img_dir=args.img_dir, label_file=args.label, output=args.build_index,
                                  append=args.append)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"added {report.added} faces ({len(report.skipped)} images skipped); index has {len(report.index)} "
          f"faces of {len(report.index.identities)} identities → {args.build_index}")
    report.index.close()
    return 0


MAX_TABLE_ROWS = 50     # a folder of 100k photos gets a table of its first rows and a total


def names_found(result) -> str:
    """``obama (0.74), unknown (0.21)`` for an image; ``obama ×120, unknown ×30`` (face-frames) for a video."""
    if result.frames is not None:
        return ", ".join(f"{name} ×{count}" for name, count in result.names.most_common())
    return ", ".join(face.name if face.similarity is None else f"{face.name} ({face.similarity:.2f})"
                     for face in result.faces if face.name is not None)


def print_results(report) -> None:
    table = PrettyTable(["input", "faces", "names (similarity)", "output"])
    table.align = "l"
    for result in report.results[:MAX_TABLE_ROWS]:
        if result.frames is None:
            faces = len(result.faces)
        else:
            rate = f", {result.frames / result.seconds:.1f} frames/s" if result.seconds else ""
            faces = f"{result.face_count} in {result.frames} frames{rate}"
        table.add_row([result.input, faces, names_found(result) or "-", result.output])
    print(table)
    if len(report.results) > MAX_TABLE_ROWS:
        total = sum(len(result.faces) for result in report.results)
        print(f"... and {len(report.results) - MAX_TABLE_ROWS} more images; {len(report.results)} images, "
              f"{total} faces in all")


def report_video_problems(report) -> None:
    """One warning line per video with corrupt frames, one line for a Ctrl-C stop."""
    for result in report.results:
        if result.corrupt_frames:
            shown = ", ".join(map(str, result.corrupt_frames[:10])) + (" ..." if len(result.corrupt_frames) > 10
                                                                        else "")
            print(f"warning: {result.input}: {len(result.corrupt_frames)} corrupt frame(s) could not be decoded "
                  f"and were skipped (frame {shown}); listed in {result.json}", file=sys.stderr)
        if result.interrupted:
            print(f"stopped by Ctrl-C after {result.frames} frames; {result.output} and {result.json} are complete "
                  "up to there", file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.build_index and not args.input:
        raise ToolkitError("nothing to do: give --input (image, folder, video) or --build_index OUT")
    if args.input and not args.build_index:
        check_input(args.input, args.output)
        check_writable_folder(args.output)
    if args.build_index and args.import_index:
        if backend_of(args.build_index) != "milvus":
            check_output_file(args.build_index, "gallery file")
        refuse_overwriting_inputs([args.build_index], [args.import_index])
    if args.build_index and not args.import_index:
        items_from_label_file(args.label, args.img_dir) if args.label else items_from_tree(args.img_dir or "")
    options = VideoOptions(track=args.track, rec_every=args.rec_every, weak_margin=args.weak_margin,
                           track_buffer=args.track_buffer)
    use_det, use_rec = (args.det, args.rec) if (args.det or args.rec) else (True, True)
    if args.build_index:
        use_rec = True
        use_det = use_det or not args.import_index
    analyzer = FaceAnalyzer(index=None if args.build_index else args.index, cpu_threads=args.cpu_threads,
                            det=use_det and not args.import_index, rec=use_rec, font=args.font,
                            search_backend=args.search_backend, batch_size=args.batch_size,
                            **model_options(args), **device_options(args))
    if args.build_index:
        return build_or_import(args, analyzer)
    if analyzer.index is not None:
        print(f"recognition threshold {analyzer.rec_thresh:.4f}: {analyzer.rec_thresh_source}")
    report = run_on_input(analyzer, args.input, args.output, video_options=options)
    print_results(report)
    report_video_problems(report)
    if any(result.interrupted for result in report.results) and not is_live_source(args.input):
        return EXIT_INTERRUPTED        # a file cut short; a live source ends with Ctrl-C normally
    if report.failed:
        for path, reason in report.failed:
            print(f"failed {path}: {reason}", file=sys.stderr)
        raise ToolkitError(f"{args.input}: {len(report.failed)} of {len(report.failed) + len(report.results)} "
                           "images could not be processed (listed above)")
    return 0


if __name__ == "__main__":
    run_cli(main)
