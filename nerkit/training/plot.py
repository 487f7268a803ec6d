"""The training history as a PNG beside history.json (with matplotlib: ``nerkit[plot]``; skipped with a
warning without it)."""

from __future__ import annotations

from pathlib import Path

from nerkit.atomic import atomic_path
from nerkit.extras import optional


def plot_history(history: list[dict], path: Path) -> bool:
    matplotlib = optional("matplotlib", "plot", f"The training history plot ({path.name})")
    if matplotlib is None:
        return False
    matplotlib.use("Agg")  # files only: no display needed, and before pyplot is imported
    import matplotlib.pyplot as plt
    epochs = [record["epoch"] for record in history]
    figure, loss_axes = plt.subplots(figsize=(6, 3.5))
    loss_axes.plot(epochs, [record["loss"] for record in history], color="tab:blue", marker=".")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss", color="tab:blue")
    if any("dev_f1" in record for record in history):
        f1_axes = loss_axes.twinx()
        f1_axes.plot([r["epoch"] for r in history if "dev_f1" in r],
                     [100 * r["dev_f1"] for r in history if "dev_f1" in r], color="tab:red", marker=".")
        f1_axes.set_ylabel("dev entity F1 (%)", color="tab:red")
    figure.tight_layout()
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=100)
    finally:
        plt.close(figure)
    return True
