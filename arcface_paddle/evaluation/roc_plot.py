"""ROC curve PNG for one verification target: TAR against FAR on a log axis, operating points marked."""
from __future__ import annotations

import io
from typing import Optional

import numpy as np
from sklearn.metrics import roc_curve

from arcface_paddle.core.safe_io import atomic_save_bytes
from arcface_paddle.evaluation.verification import VerificationResult


def plot_roc(result: VerificationResult, path: str, title: str, subtitle: Optional[str] = None) -> str:
    """Write ``path`` (PNG) from a result that kept its per-pair ``scores`` and ``labels``."""
    import matplotlib  # heavy (paddle): imported on first use
    matplotlib.use("Agg")   # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt  # heavy (paddle): imported on first use

    if result.scores is None or result.labels is None:
        raise ValueError("the result has no per-pair scores to plot")
    labels = np.asarray(result.labels, dtype=bool)
    num_negatives = int((~labels).sum())
    if num_negatives == 0 or labels.sum() == 0:
        raise ValueError("an ROC curve needs both genuine and impostor pairs")
    fpr, tpr, _ = roc_curve(labels, result.scores, drop_intermediate=False)
    floor = 1.0 / num_negatives            # the smallest non-zero FAR this set can show
    # On a log axis FAR=0 has no place: points there are drawn at the floor (a vertical start).
    shown_fpr = np.maximum(fpr, floor)

    figure, axis = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    axis.plot(shown_fpr, tpr, color="#1f77b4", linewidth=2,
              label=f"ROC (AUC {result.auc:.4f})" if result.auc is not None else "ROC")
    for far, tar in sorted(result.tar_at_far.items()):
        axis.plot([far], [tar], "o", color="#d62728", markersize=6)
        axis.annotate(f"TAR {tar:.4f} @ FAR {far:.0e}", (far, tar), textcoords="offset points", xytext=(8, -14),
                      fontsize=9, color="#d62728")
    axis.set_xscale("log")
    axis.set_xlim(floor, 1.0)
    axis.set_ylim(0.0, 1.005)
    axis.set_xlabel("False accept rate (FAR, log scale)")
    axis.set_ylabel("True accept rate (TAR)")
    heading = f"{title}: accuracy {100 * result.accuracy:.2f}% ± {100 * result.accuracy_std:.2f}"
    axis.set_title(heading if subtitle is None else f"{heading}\n{subtitle}", fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_save_bytes(path, buffer.getvalue())
    return path
