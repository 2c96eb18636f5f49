"""BlazeFace training loss: smooth-L1 box and keypoint regression on positive anchors, sigmoid
cross-entropy on scores with hard-negative mining (SSD's 3 negatives per positive).

Regression errors are in input pixels divided by each anchor's SSD size (``AnchorMatcher.
regression_normalizer``), so the loss does not favour large faces.  Keypoints count only where the
matched face has them annotated (RetinaFace labels lack ears; WIDER FACE has no keypoints at all).
"""
from __future__ import annotations

import dataclasses

import paddle
import paddle.nn.functional as F


@dataclasses.dataclass
class LossWeights:
    box: float = 1.0
    keypoint: float = 0.5
    score: float = 1.0
    negative_ratio: float = 3.0          # hard negatives kept per positive anchor
    min_negatives: int = 16              # per image, so images without faces still teach "no face"


def smooth_l1(difference: paddle.Tensor, beta: float = 1.0) -> paddle.Tensor:
    magnitude = difference.abs()
    return paddle.where(magnitude < beta, 0.5 * magnitude * magnitude / beta, magnitude - 0.5 * beta)


def hard_negative_mask(score_losses: paddle.Tensor, negatives: paddle.Tensor, num_positive_per_image: paddle.Tensor,
                       negative_ratio: float, min_negatives: int) -> paddle.Tensor:
    """N×A bool: per image the ``max(ratio × positives, min_negatives)`` negatives with the highest loss."""
    with paddle.no_grad():
        ranked = paddle.where(negatives, score_losses, paddle.full_like(score_losses, -1.0))
        order = paddle.argsort(ranked, axis=1, descending=True)
        rank = paddle.argsort(order, axis=1)                               # rank of each anchor's loss
        quota = paddle.maximum(num_positive_per_image * negative_ratio,
                               paddle.full_like(num_positive_per_image, float(min_negatives)))
        quota = paddle.minimum(quota, negatives.astype("float32").sum(axis=1))
        return (rank.astype("float32") < quota.unsqueeze(1)) & negatives


def detection_loss(regressors: paddle.Tensor, score_logits: paddle.Tensor, labels: paddle.Tensor,
                   regression_targets: paddle.Tensor, keypoint_mask: paddle.Tensor, normalizer: paddle.Tensor,
                   weights: LossWeights = LossWeights()) -> dict:
    """Loss terms for a batch.

    ``regressors`` N×A×16 and ``score_logits`` N×A×1 (BlazeFace outputs); ``labels`` N×A (1 positive,
    0 negative, -1 ignore); ``regression_targets`` N×A×16 (``matching.encode``); ``keypoint_mask``
    N×A×6; ``normalizer`` A (pixels).  Returns {"loss", "box", "keypoint", "score", "num_positive"}.
    """
    positive = labels == 1
    positive_f = positive.astype("float32")
    num_positive_per_image = positive_f.sum(axis=1)
    num_positive = paddle.clip(num_positive_per_image.sum(), min=1.0)

    scaled = (regressors - regression_targets) / normalizer.reshape([1, -1, 1])
    box_terms = smooth_l1(scaled[:, :, :4]).sum(axis=2)
    box_loss = (box_terms * positive_f).sum() / num_positive

    point_terms = smooth_l1(scaled[:, :, 4:]).reshape(keypoint_mask.shape + [2]).sum(axis=3)
    point_weight = keypoint_mask * positive_f.unsqueeze(2)
    keypoint_loss = (point_terms * point_weight).sum() / paddle.clip(point_weight.sum(), min=1.0)

    logits = score_logits.squeeze(-1)
    score_losses = F.binary_cross_entropy_with_logits(logits, positive_f, reduction="none")
    chosen_negatives = hard_negative_mask(score_losses.detach(), labels == 0, num_positive_per_image,
                                          weights.negative_ratio, weights.min_negatives)
    counted = positive_f + chosen_negatives.astype("float32")
    score_loss = (score_losses * counted).sum() / num_positive

    total = weights.box * box_loss + weights.keypoint * keypoint_loss + weights.score * score_loss
    return {"loss": total, "box": box_loss, "keypoint": keypoint_loss, "score": score_loss,
            "num_positive": num_positive_per_image.sum()}
