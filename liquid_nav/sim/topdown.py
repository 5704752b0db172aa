"""Top-down maps of a scene (obstacles, start, target) with an optional flown trajectory (matplotlib)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from liquid_nav.sim.worlds import Scene


def draw_topdown(ax, scene: Scene, trajectory: Optional[Sequence[Sequence[float]]] = None,
                 title: Optional[str] = None) -> None:
    """Draw ``scene`` seen from above into the matplotlib axes ``ax`` (world metres, x right, y up)."""
    from matplotlib.patches import Circle, Polygon, Rectangle

    layout = scene.layout
    half = layout.half_size
    ax.add_patch(Rectangle((-half, -half), 2 * half, 2 * half, fill=False, linestyle="--", color="0.4"))
    for prim in sorted(layout.primitives, key=lambda item: item.position[2] + item.half_extents[2]):
        if not prim.collision and prim.half_extents[2] > 0.05:
            continue  # windows and similar facade details
        color = prim.rgba[:3]
        if prim.shape == "box":
            hx, hy = prim.half_extents[:2]
            cos, sin = math.cos(prim.yaw), math.sin(prim.yaw)
            corners = [(prim.position[0] + sx * hx * cos - sy * hy * sin, prim.position[1] + sx * hx * sin + sy * hy * cos)
                       for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            ax.add_patch(Polygon(corners, closed=True, color=color, alpha=0.9 if prim.collision else 0.5, lw=0))
        else:
            ax.add_patch(Circle(prim.position[:2], prim.half_extents[0], color=color,
                                alpha=0.6 if prim.collision else 0.4, lw=0))
    start = scene.start_position
    ax.plot(start[0], start[1], marker="o", color="royalblue", markersize=8, label="start")
    ax.arrow(start[0], start[1], 2.0 * math.cos(scene.start_yaw), 2.0 * math.sin(scene.start_yaw),
             width=0.15, color="royalblue")
    target = scene.target_position
    ax.plot(target[0], target[1], marker="*", color="red", markersize=14, markeredgecolor="black", label="target")
    if trajectory is not None and len(trajectory):
        points = np.asarray(trajectory, dtype=np.float64)
        ax.plot(points[:, 0], points[:, 1], color="black", linewidth=1.5, label="trajectory")
    ax.set_xlim(-half - 2, half + 2)
    ax.set_ylim(-half - 2, half + 2)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title or f"{layout.world}, seed {scene.seed}")

