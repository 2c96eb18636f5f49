"""Validation time: a training checkpoint (program built in memory, run by the predictor) vs its exported model.

Goal (issue 15): validating a checkpoint takes at most 1.5× the exported model's time, with identical numbers.
Peers in the same run, on the same synthetic verification set:

* exported model folder (Paddle Inference, oneDNN) — the reference time;
* the checkpoint through ``valid.py``'s path (export into memory + predictor), program build included;
* the checkpoint through eager kernels (what valid.py and in-training validation did before).

    python benchmarks/bench_validation.py                     # MobileFaceNet_128, 112×112, 400 pairs
    python benchmarks/bench_validation.py --network iResNet50 --pairs 200 --threads 2
"""
import argparse
import os
import sys
import tempfile
import time

from prettytable import PrettyTable


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="MobileFaceNet_128")
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--skip_eager", action="store_true", help="leave out the (slow) eager row")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import paddle  # heavy: after the thread setting

    from arcface_paddle.backbones import get_model
    from arcface_paddle.backbones.loading import load_backbone
    from arcface_paddle.core.checkpoint import save_checkpoint
    from arcface_paddle.core.processes import set_math_threads
    from arcface_paddle.data.synthetic import write_synthetic_verification_bin
    from arcface_paddle.data.verification_bin import load_verification_bin
    from arcface_paddle.evaluation.validate import validate
    from arcface_paddle.evaluation.verification import evaluate_images, layer_embed_fn
    from arcface_paddle.inference.export import export_checkpoint
    from arcface_paddle.synthetic.faces import SyntheticFaces

    paddle.set_device("cpu")
    set_math_threads(args.threads)
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        faces = SyntheticFaces(num_identities=50, images_per_identity=4, seed=0, image_size=112)
        write_synthetic_verification_bin(faces, os.path.join(data, "lfw.bin"), identities=list(range(100, 150)),
                                         num_pairs=args.pairs)
        paddle.seed(0)
        model = get_model(args.network)
        model.eval()
        checkpoint = os.path.join(work, "run")
        save_checkpoint(checkpoint, 1, meta={"network": args.network, "backbone_kwargs": {},
                                             "embedding_size": int(model(paddle.zeros([1, 3, 112, 112])).shape[1])},
                        backbone_state=model.state_dict())
        exported = os.path.join(work, "exported")
        export_checkpoint(checkpoint, exported)
        options = dict(targets="lfw", data_dir=data, batch_size=args.batch_size, cpu_threads=args.threads,
                       progress=False, plot=False)

        def timed(path):
            start = time.perf_counter()
            results, _ = validate(path, **options)
            return time.perf_counter() - start, results["lfw"]

        timed(exported)                                     # warm-up: oneDNN kernels, file cache
        exported_time, exported_result = timed(exported)
        checkpoint_time, checkpoint_result = timed(checkpoint)
        table = PrettyTable(["model", "seconds", "ratio vs exported", "same numbers"])
        table.add_row(["exported model (predictor)", f"{exported_time:.2f}", "1.00", "-"])
        same = checkpoint_result.as_dict() == exported_result.as_dict()
        table.add_row(["checkpoint (program in memory)", f"{checkpoint_time:.2f}",
                       f"{checkpoint_time / exported_time:.2f}", "yes" if same else "NO"])
        if not args.skip_eager:
            layer, _ = load_backbone(checkpoint)
            images, issame = load_verification_bin(os.path.join(data, "lfw.bin"))
            start = time.perf_counter()
            eager = evaluate_images(layer_embed_fn(layer), images, issame, batch_size=args.batch_size)
            eager_time = time.perf_counter() - start
            table.add_row(["checkpoint (eager kernels, before)", f"{eager_time:.2f}",
                           f"{eager_time / exported_time:.2f}",
                           "to float rounding" if abs(eager.accuracy - exported_result.accuracy) < 1e-9 else "close"])
    print(f"{args.network}, {args.pairs} pairs ({4 * args.pairs} images with flips), {args.threads} threads")
    print(table)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
