"""Validation results as a prettytable and as a JSON file."""
from __future__ import annotations

import json
from typing import Dict, Optional, Sequence

from prettytable import PrettyTable

from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.evaluation.verification import VerificationResult, far_label


def report_fars(results: Dict[str, VerificationResult]) -> tuple:
    """The FAR columns of a report: every FAR any result was asked for, in the order asked."""
    return tuple(dict.fromkeys(far for result in results.values() for far in result.fars))


def results_table(results: Dict[str, VerificationResult], fars: Optional[Sequence[float]] = None) -> str:
    """One row per target: accuracy ± std (%), best threshold, XNorm, TAR at each FAR ('-' if unmeasurable)."""

    fars = report_fars(results) if fars is None else tuple(fars)
    table = PrettyTable()
    table.field_names = ["target", "pairs", "accuracy (%)", "best threshold", "XNorm",
                         *[f"TAR@FAR={far_label(far)}" for far in fars], "AUC"]
    for name, result in results.items():
        tars = [f"{100 * result.tar_at_far[far]:.2f}" if far in result.tar_at_far else "-" for far in fars]
        table.add_row([name, result.num_pairs, f"{100 * result.accuracy:.2f} ± {100 * result.accuracy_std:.2f}",
                       f"{result.best_threshold:.4f}", f"{result.xnorm:.4g}", *tars,
                       f"{result.auc:.4f}" if result.auc is not None else "-"])
    table.align = "r"
    table.align["target"] = "l"
    return table.get_string()


def write_results_json(path: str, results: Dict[str, VerificationResult], model: dict) -> str:
    """``{"model": {...}, "targets": {name: VerificationResult.as_dict()}}``, written atomically."""
    document = {"model": model, "targets": {name: result.as_dict() for name, result in results.items()}}
    with atomic_write(path, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    return path
