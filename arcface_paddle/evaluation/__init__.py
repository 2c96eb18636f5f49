"""Verification metrics (pure functions) and the evaluation protocol for ``.bin`` pair sets."""
from arcface_paddle.evaluation.verification import (
    VerificationResult,
    evaluate_embeddings,
    evaluate_images,
    evaluate_layer,
)

__all__ = ["VerificationResult", "evaluate_embeddings", "evaluate_images", "evaluate_layer"]
