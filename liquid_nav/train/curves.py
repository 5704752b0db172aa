"""Training curves of one or more runs (``RUN/log.csv``) as one PNG: losses and the trainability diagnostics.

Panels: training loss (smoothed), validation loss, the feature scale the head sees (std), the fraction of
saturated head states and gates, the gradient norm reaching the CNN and the clipped total gradient norm. A run that
goes the way of the probe in ``docs/training.md`` (features growing, states saturating, CNN gradient at zero)
shows it here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from liquid_nav.train.trainer import read_log

PANELS = (("loss", "training loss (EMA)", "train", True), ("validation_loss", "validation loss", "validation", True),
          ("feature_std", "feature std at the head input", "train", False),
          ("state_saturation", "saturated states (|x| > 0.99)", "train", False),
          ("gate_saturation", "saturated gates (within 0.01 of 0 or 1)", "train", False),
          ("cnn_grad_norm", "gradient norm reaching the CNN", "train", True),
          ("grad_norm", "total gradient norm (before clipping)", "train", True))


def _series(rows: List[Dict[str, str]], key: str, kind: str) -> np.ndarray:
    points = [(int(row["step"]), float(row[key])) for row in rows if row["kind"] == kind and row.get(key)]
    return np.array(points, dtype=float).reshape(-1, 2)


def _ema(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    smoothed, level = np.empty_like(values), values[0] if len(values) else 0.0
    for index, value in enumerate(values):
        level = weight * level + (1 - weight) * value
        smoothed[index] = level
    return smoothed


def plot_training_curves(runs: Dict[str, Path], path: Path, title: str = "",
                         group: Optional[Callable[[str], str]] = None) -> Path:
    """Write the curves of ``runs`` (label -> run directory) to ``path`` (PNG); returns ``path``. With ``group``
    (label -> group name), runs of one group share a colour and the legend names the groups."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = {label: read_log(Path(run)) for label, run in runs.items()}
    figure, axes = plt.subplots(2, 4, figsize=(18, 7.5))
    for unused in axes.flat[len(PANELS):]:
        unused.axis("off")
    colors = plt.get_cmap("tab10")
    names = [group(label) if group else label for label in logs]
    groups = list(dict.fromkeys(names))
    for ax, (key, name, kind, log_scale) in zip(axes.flat, PANELS):
        legend_done = set()
        for label, group_name in zip(logs, names):
            series = _series(logs[label], key, kind)
            if not len(series):
                continue
            values = _ema(series[:, 1]) if key == "loss" else series[:, 1]
            legend = group_name if group_name not in legend_done else "_nolegend_"
            legend_done.add(group_name)
            ax.plot(series[:, 0], values, color=colors(groups.index(group_name) % 10), label=legend,
                    marker="o" if kind == "validation" else None, markersize=3, linewidth=1.2)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        if log_scale and ax.lines and all(np.all(line.get_ydata() > 0) for line in ax.lines):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
