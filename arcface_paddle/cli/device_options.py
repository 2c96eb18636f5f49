"""The inference-device flags every predicting CLI shares: ``--use_gpu``, ``--use_tensorrt``, ``--precision``,
and ``--det_engine`` (OpenVINO or oneDNN for the detector on a CPU).

``--use_tensorrt`` and ``--precision fp16`` imply ``--use_gpu``.  On the CPU build of paddle any of them is a
one-line error naming ``paddlepaddle-gpu`` (raised by :class:`arcface_paddle.core.predictor.Predictor`), and
they reach the detector and the recognizer alike.
"""
from __future__ import annotations

import argparse

from arcface_paddle.core.predictor import CPU_ENGINES, PRECISIONS
from blazeface_paddle.inference.predictor import DEFAULT_CPU_ENGINE


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inference device (GPU needs paddlepaddle-gpu)")
    group.add_argument("--use_gpu", action="store_true", help="run the models on a CUDA GPU")
    group.add_argument("--use_tensorrt", action="store_true",
                       help="TensorRT subgraphs on the GPU (implies --use_gpu; the first run builds the engines)")
    group.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="fp16: half-precision GPU inference (implies --use_gpu); the CPU always runs fp32")
    group.add_argument("--gpu_id", type=int, default=0, help="which GPU (default 0)")
    group.add_argument("--det_engine", choices=CPU_ENGINES, default=DEFAULT_CPU_ENGINE,
                       help=f"what runs the detector on a CPU (default {DEFAULT_CPU_ENGINE}: ~2x faster than "
                            "Paddle's oneDNN kernels, same boxes within 1e-3 px; oneDNN is used anyway for a "
                            "program OpenVINO cannot convert)")


def device_options(args: argparse.Namespace) -> dict:
    """Predictor keyword options from :func:`add_device_arguments`'s flags."""
    use_gpu = bool(args.use_gpu or args.use_tensorrt or args.precision != "fp32")
    return {"use_gpu": use_gpu, "use_tensorrt": bool(args.use_tensorrt), "precision": args.precision,
            "gpu_id": int(args.gpu_id), "det_engine": args.det_engine}
