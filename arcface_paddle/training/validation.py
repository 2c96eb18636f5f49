"""In-training validation on the ``.bin`` targets, through the fast inference path.

The backbone's program is built in memory and run by a Paddle Inference predictor
(:func:`arcface_paddle.inference.layer_predictor.predictor_from_layer`) — the path ``valid.py`` and an
exported model take, several times faster than eager kernels on a CPU.  Should building that program fail
(a network the exporter cannot trace), validation says so once and falls back to the eager network.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

from arcface_paddle.evaluation.verification import VerificationResult, evaluate_images, evaluate_layer
from arcface_paddle.inference.layer_predictor import predictor_from_layer


def evaluate_targets(backbone, targets: Sequence, config: dict, *, on_gpu: bool, cpu_threads: int,
                     log: Callable[[str], None] = print) -> Dict[str, VerificationResult]:
    """``{target name: result}`` for the current weights of ``backbone`` (its train/eval mode is kept)."""
    options = config["validation"]
    batch_size = int(options["batch_size"])
    size = int(config["data"]["image_size"])
    kwargs = dict(batch_size=batch_size, fars=tuple(float(far) for far in options["fars"]),
                  protocol=options["protocol"], progress=True)
    try:
        embed = predictor_from_layer(backbone, network=config["network"], input_size=[size, size],
                                     cpu_threads=cpu_threads, use_gpu=on_gpu, batch_size=2 * batch_size).embed
    except Exception as error:  # any tracing/loading failure: the eager network still gives the right numbers
        log(f"validation: building the inference program failed ({type(error).__name__}: {error}); "
            f"validating with eager kernels instead (slower)")
        embed = None
    results = {}
    for target in targets:
        if embed is None:
            results[target.name] = evaluate_layer(backbone, target.images, target.issame,
                                                  desc=f"validating {target.name}", **kwargs)
        else:
            results[target.name] = evaluate_images(embed, target.images, target.issame,
                                                   desc=f"validating {target.name}", **kwargs)
    return results
