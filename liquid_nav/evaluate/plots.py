"""The report's pictures (matplotlib, PNG under ``plots/``): each readable on its own, every success rate with
its Wilson 95 % interval, every model in the same colour everywhere."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from liquid_nav.evaluate.conditions import FAMILIES, NOMINAL
from liquid_nav.evaluate.experiment import ExperimentConfig
from liquid_nav.evaluate.stats import wilson_interval

PLOTS_DIR = "plots"
OUTCOME_COLORS = {"success": "#2ca02c", "collision": "#d62728", "timeout": "#ff7f0e", "out_of_bounds": "#9467bd"}
END_MARKERS = {"success": "o", "collision": "X", "timeout": "s", "out_of_bounds": "^"}
DISTANCE_BIN_M = 5.0
TOPDOWN_SEEDS = 4


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def model_colors(models: Sequence[str]) -> Dict[str, Any]:
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    return {model: palette(index % 10) for index, model in enumerate(models)}


def _errors(cells: Sequence[Dict[str, Any]]) -> np.ndarray:
    """(2, N) error bar lengths below / above each cell's success rate."""
    return np.array([[100 * (cell["success_rate"] - cell["wilson_low"]) for cell in cells],
                     [100 * (cell["wilson_high"] - cell["success_rate"]) for cell in cells]])


def _save(figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)


def _panels(count: int, width: float, height: float, **options):
    """A constrained-layout figure with ``count`` panels in a row (axes as a flat list)."""
    figure, axes = _pyplot().subplots(1, count, figsize=(width, height), squeeze=False, layout="constrained",
                                      **options)
    return figure, list(axes[0])


def _legend_outside(figure, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right upper", fontsize=8)


def _grouped_bars(ax, groups: Sequence[str], models: Sequence[str], colors: Dict[str, Any],
                  cell_of) -> None:
    """Bars of success (%) with Wilson error bars: one group per x label, one bar per model."""
    width = 0.8 / max(1, len(models))
    for index, model in enumerate(models):
        cells = [cell_of(model, group) for group in groups]
        present = [(x, cell) for x, cell in enumerate(cells) if cell is not None]
        if not present:
            continue
        xs = np.array([x for x, _ in present]) + (index - (len(models) - 1) / 2) * width
        shown = [cell for _, cell in present]
        rates = [100 * cell["success_rate"] for cell in shown]
        ax.bar(xs, rates, width, yerr=_errors(shown), capsize=3, color=colors[model], label=model,
               error_kw={"elinewidth": 0.8, "ecolor": "0.3"})
        for x, rate in zip(xs, rates):
            ax.text(x, rate + 1.0, f"{rate:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), groups, rotation=20 if max(map(len, groups)) > 8 else 0)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success (%)")
    ax.grid(axis="y", alpha=0.3)


def success_by_world(path: Path, results: Dict[str, Any], models: List[str], worlds: List[str],
                     colors: Dict[str, Any]) -> None:
    cells = {(c["model"], c["world"]): c for c in results["cells"] if c["label"] == NOMINAL.label}
    figure, (ax,) = _panels(1, 4.0 + 0.5 * len(models) * len(worlds), 4.2)
    _grouped_bars(ax, worlds, models, colors, lambda model, world: cells.get((model, world)))
    figure.suptitle("Success per world, nominal conditions\n(bars and numbers: %; whiskers: Wilson 95 % intervals)",
                    fontsize=10)
    _legend_outside(figure, ax)
    _save(figure, path)


def outcomes_by_world(path: Path, results: Dict[str, Any], models: List[str], worlds: List[str]) -> None:
    """Stacked outcome shares per model and world (nominal): why the failures fail."""
    cells = {(c["model"], c["world"]): c for c in results["cells"] if c["label"] == NOMINAL.label}
    figure, axes = _panels(len(worlds), 2.4 + 1.0 * len(models) * len(worlds), 3.8)
    for ax, world in zip(axes, worlds):
        bottom = np.zeros(len(models))
        for outcome, color in OUTCOME_COLORS.items():
            shares = np.array([100 * cells[(m, world)]["outcomes"][outcome] / cells[(m, world)]["episodes"]
                               if (m, world) in cells else 0.0 for m in models])
            ax.bar(range(len(models)), shares, bottom=bottom, color=color, label=outcome.replace("_", " "))
            bottom += shares
        ax.set_xticks(range(len(models)), models, rotation=30, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_title(world)
    axes[0].set_ylabel("episodes (%)")
    _legend_outside(figure, axes[0])
    figure.suptitle("Outcomes, nominal conditions")
    _save(figure, path)


def overview(path: Path, results: Dict[str, Any], models: List[str], worlds: List[str]) -> None:
    """Success (%) of every model (columns) under every condition (rows), one panel per world."""
    labels = list(dict.fromkeys(c["label"] for c in results["cells"]))
    cells = {(c["model"], c["world"], c["label"]): c for c in results["cells"]}
    figure, axes = _panels(len(worlds), 2.8 + (0.9 * len(models) + 1.2) * len(worlds), 1.6 + 0.28 * len(labels))
    for ax, world in zip(axes, worlds):
        grid = np.full((len(labels), len(models)), np.nan)
        for row, label in enumerate(labels):
            for column, model in enumerate(models):
                cell = cells.get((model, world, label))
                if cell is not None:
                    grid[row, column] = 100 * cell["success_rate"]
        image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
        for (row, column), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(models)), models, rotation=30, fontsize=8)
        ax.set_yticks(range(len(labels)), labels if ax is axes[0] else [""] * len(labels), fontsize=7)
        ax.set_title(world)
    figure.colorbar(image, ax=axes, shrink=0.6, label="success (%)")
    figure.suptitle("Success (%) per condition and model")
    _save(figure, path)


def success_vs_family(path: Path, name: str, results: Dict[str, Any], models: List[str], worlds: List[str],
                      colors: Dict[str, Any]) -> None:
    """Success against the strength of one condition family (the nominal cell at its neutral level)."""
    family = FAMILIES[name]
    figure, axes = _panels(len(worlds), 2.2 + 4.0 * len(worlds), 3.8, sharey=True)
    for ax, world in zip(axes, worlds):
        chosen = [c for c in results["cells"] if c["world"] == world and c["condition"] in (name, NOMINAL.name)]
        if family.choices:
            levels = [str(family.neutral)] + list(dict.fromkeys(c["strength"] for c in chosen if c["strength"]))
            cells = {(c["model"], str(c["strength"] if c["condition"] == name else family.neutral)): c for c in chosen}
            _grouped_bars(ax, levels, models, colors, lambda model, level: cells.get((model, level)))
        else:
            strengths = [family.neutral] + [c["strength"] for c in chosen if c["condition"] == name]
            dodge = 0.012 * (max(strengths) - min(strengths) or 1.0)  # keeps equal points of models apart
            for index, model in enumerate(models):
                points = sorted((family.neutral if c["condition"] == NOMINAL.name else c["strength"], c)
                                for c in chosen if c["model"] == model)
                if points:
                    shown = [cell for _, cell in points]
                    offset = (index - (len(models) - 1) / 2) * dodge
                    ax.errorbar([x + offset for x, _ in points], [100 * cell["success_rate"] for cell in shown],
                                yerr=_errors(shown), marker="o", capsize=3, color=colors[model], label=model)
            ax.axvline(family.neutral, color="0.6", linestyle=":", linewidth=1)
            ax.set_ylim(-3, 105)
            ax.grid(alpha=0.3)
            ax.set_ylabel("success (%)")
        ax.set_xlabel(f"{name}: {family.unit}")
        ax.set_title(world)
    _legend_outside(figure, axes[0])
    figure.suptitle(f"Success vs {name}: {family.description} (dotted: nominal)")
    _save(figure, path)


def success_vs_start_distance(path: Path, rows: List[Dict[str, Any]], models: List[str], worlds: List[str],
                              colors: Dict[str, Any]) -> None:
    """Success against the start distance to the target (nominal and range cells, 5 m bins)."""
    chosen = [row for row in rows if row["condition"] in (NOMINAL.name, "range") and row["model"] in models]
    figure, axes = _panels(len(worlds), 2.2 + 4.0 * len(worlds), 3.8, sharey=True)
    top = max((row["start_distance_m"] for row in chosen), default=DISTANCE_BIN_M)
    edges = np.arange(0.0, top + DISTANCE_BIN_M, DISTANCE_BIN_M)
    for ax, world in zip(axes, worlds):
        for number, model in enumerate(models):
            episodes = [row for row in chosen if row["world"] == world and row["model"] == model]
            bins = np.digitize([row["start_distance_m"] for row in episodes], edges) - 1
            centers, rates, errors = [], [], []
            for index in sorted(set(bins.tolist())):
                outcomes = [bool(row["success"]) for row, b in zip(episodes, bins) if b == index]
                low, high = wilson_interval(sum(outcomes), len(outcomes))
                rate = sum(outcomes) / len(outcomes)
                centers.append(edges[index] + DISTANCE_BIN_M / 2 + 0.15 * (number - (len(models) - 1) / 2))
                rates.append(100 * rate)
                errors.append((100 * (rate - low), 100 * (high - rate)))
            if centers:
                ax.errorbar(centers, rates, yerr=np.array(errors).T, marker="o", capsize=3, color=colors[model],
                            label=model)
        ax.set_xlim(0.0, edges[-1])
        ax.set_xlabel("start distance to the target (m)")
        ax.set_title(world)
        ax.set_ylim(-3, 105)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("success (%)")
    _legend_outside(figure, axes[0])
    figure.suptitle("Success vs start distance (nominal + range conditions, 5 m bins)")
    _save(figure, path)


def square_around(points: np.ndarray, margin: float = 5.0) -> Tuple[np.ndarray, float]:
    """(centre, half side) of the square holding ``points`` (K, 2) plus ``margin`` metres."""
    low, high = points.min(axis=0) - margin, points.max(axis=0) + margin
    return (low + high) / 2, float((high - low).max()) / 2


def draw_zoomed(ax, scene, points: np.ndarray, margin: float = 5.0) -> None:
    """``draw_topdown`` of the square around ``points``, drawing only the primitives that reach into it."""
    from liquid_nav.sim.topdown import draw_topdown

    center, half = square_around(points, margin)
    nearby = tuple(prim for prim in scene.layout.primitives
                   if np.all(np.abs(np.asarray(prim.position[:2]) - center) <= half + max(prim.half_extents[:2])))
    draw_topdown(ax, replace(scene, layout=replace(scene.layout, primitives=nearby)))
    ax.set_xlim(center[0] - half, center[0] + half)
    ax.set_ylim(center[1] - half, center[1] + half)


def topdown(path: Path, experiment: ExperimentConfig, world: str, rows: List[Dict[str, Any]], models: List[str],
            colors: Dict[str, Any]) -> None:
    """The first nominal seeds of ``world`` seen from above, every model's flight drawn on the same scene."""
    from liquid_nav.sim.worlds import load_world, sample_scene

    spec = load_world(experiment.world_source(world))
    seeds = list(experiment.seeds())[:TOPDOWN_SEEDS]
    flights = {(row["model"], row["seed"]): row for row in rows
               if row["world"] == world and row["condition"] == NOMINAL.name}
    figure, axes = _panels(len(seeds), 4.6 * len(seeds), 5.0)
    for ax, seed in zip(axes, seeds):
        scene = sample_scene(spec, seed)
        trajectories = {model: np.asarray(flights[(model, seed)]["trajectory_xy"]) for model in models
                        if (model, seed) in flights}
        points = np.vstack([np.asarray([scene.start_position[:2], scene.target_position[:2]])]
                           + list(trajectories.values()))
        draw_zoomed(ax, scene, points)
        for model, trajectory in trajectories.items():
            row = flights[(model, seed)]
            ax.plot(trajectory[:, 0], trajectory[:, 1], color=colors[model], linewidth=1.6,
                    label=f"{model}: {row['outcome'].replace('_', ' ')}")
            ax.plot(*trajectory[-1], marker=END_MARKERS[row["outcome"]], color=colors[model], markersize=9,
                    markeredgecolor="black")
        ax.legend(fontsize=7, loc="upper right", framealpha=0.8)
        ax.set_title(f"{world}, seed {seed}", fontsize=10)
    figure.suptitle(f"{world}: flights on the same scenes (end markers: o success, X collision, "
                    f"square timeout, ^ out of bounds)", fontsize=10)
    _save(figure, path)


def write_plots(run_dir: Path, experiment: ExperimentConfig, results: Dict[str, Any],
                rows: List[Dict[str, Any]]) -> List[str]:
    """Every plot of the report; returns their paths relative to ``run_dir``."""
    models = [model.label for model in experiment.models]
    worlds = list(dict.fromkeys(cell["world"] for cell in results["cells"]))
    if not worlds:
        return []
    colors = model_colors(models)
    out = Path(run_dir) / PLOTS_DIR
    written: List[str] = []

    def plot(name: str, draw, *args) -> None:
        draw(out / name, *args)
        written.append(f"{PLOTS_DIR}/{name}")

    plot("success_by_world.png", success_by_world, results, models, worlds, colors)
    plot("outcomes_by_world.png", outcomes_by_world, results, models, worlds)
    if experiment.conditions:
        plot("overview.png", overview, results, models, worlds)
    families = dict.fromkeys(c.name for c in experiment.conditions if c.strength is not None and c.name != "range")
    for name in families:
        plot(f"success_vs_{name}.png", success_vs_family, name, results, models, worlds, colors)
    plot("success_vs_start_distance.png", success_vs_start_distance, rows, models, worlds, colors)
    for world in worlds:
        plot(f"topdown_{world}.png", topdown, experiment, world, rows, models, colors)
    return written
