"""The privileged expert: knows the obstacles and the target, outputs body-frame FLU velocity commands.

At ``reset`` it plans on a 2D grid around the start and the target: cells closer to an obstacle than
the drone's radius plus a margin are blocked, cells near obstacles cost extra (so the path keeps to the
middle of gaps), and a Dijkstra cost-to-go from the target gives the path by steepest descent, shortened
by line-of-sight shortcuts. Flying, it follows the path with a look-ahead point: it turns toward it,
slows for turns, near obstacles and on the final approach, faces the target for the last metres,
descends to the approach altitude (so the target stays in the camera's view) and stops at
``stop_distance``. Commands are rate-limited (bounded acceleration and yaw acceleration) so that they
are smooth enough to be learnt from images. If the drone strays from the path it replans from where
it is.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from liquid_nav.sim.worlds import Footprints, Scene

SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class ExpertConfig:
    """Tuning of :class:`PrivilegedExpert` (speeds in m/s, accelerations in m/s^2, angles in rad)."""

    cruise_speed: float = 2.5
    cruise_altitude: float = 1.5
    approach_altitude: float = 0.9  # altitude for the last metres: keeps a ~1 m target in view
    approach_distance: float = 5.0  # start descending / facing the target this close (horizontal m)
    stop_distance: float = 1.5  # hover this far from the target centre
    braking: float = 0.8  # m/s^2 planned deceleration (below max_acceleration: the vehicle lags)
    response_time: float = 0.5  # s, lag of the vehicle behind the command, anticipated when braking
    max_acceleration: float = 2.0
    max_yaw_rate: float = 1.0
    max_yaw_acceleration: float = 3.0
    yaw_gain: float = 1.8
    lookahead: float = 2.0
    grid_resolution: float = 0.25
    grid_margin: float = 8.0  # planning window beyond the start/target bounding box
    safety_margin: float = 0.35  # extra clearance beyond the drone's radius
    preferred_clearance: float = 1.6  # clearance below which cells cost extra
    replan_deviation: float = 1.2  # replan when farther than this from the path


class PrivilegedExpert:
    """Expert pilot with access to the scene (``from_env``), then ``reset(info)`` / ``act(info)``."""

    def __init__(self, env: Any, config: Optional[ExpertConfig] = None):
        base = env.unwrapped
        self.env = base
        self.config = config or ExpertConfig()
        vehicle = base.sim.vehicle
        self.drone_radius = float(math.hypot(*vehicle.collision_half_extents[:2]))
        self.max_speed = min(self.config.cruise_speed, vehicle.max_speed_xy)
        self.max_yaw_rate = min(self.config.max_yaw_rate, vehicle.max_yaw_rate)
        self.dt = base.control_period
        self.path = np.zeros((0, 2))
        self._progress = 0
        self._command = np.zeros(4)
        self.grid: Optional[_Grid] = None  # planning grid of the current episode (after reset)

    @classmethod
    def from_env(cls, env: Any, config: Optional[ExpertConfig] = None) -> "PrivilegedExpert":
        return cls(env, config)

    def reset(self, info: Dict[str, Any]) -> None:
        """Plan for the env's current scene from the drone's position in ``info``."""
        scene: Scene = self.env.scene
        self.grid = _Grid(scene, np.asarray(info["position"][:2]), self.drone_radius, self.config)
        self._command = np.zeros(4)
        self._replan(np.asarray(info["position"][:2], dtype=np.float64))

    def _replan(self, position: np.ndarray) -> None:
        self.path = self.grid.path_from(position)
        self._progress = 0

    def act(self, observation: Any, info: Dict[str, Any]) -> np.ndarray:
        """The next command (vx, vy, vz, yaw_rate), body FLU, float32, from the privileged ``info`` alone
        (the observation is not looked at: the expert is a :class:`liquid_nav.sim.rollout.Pilot`)."""
        if self.grid is None:
            raise RuntimeError("PrivilegedExpert.act() called before reset(info): there is no plan to follow yet")
        config = self.config
        position = np.asarray(info["position"], dtype=np.float64)
        here = position[:2]
        target = np.asarray(info["target_position"][:2], dtype=np.float64)
        yaw = float(info["yaw"])
        to_target = float(np.hypot(*(target - here)))

        deviation, remaining, lookahead = self._follow(here)
        if deviation > config.replan_deviation:
            self._replan(here)
            deviation, remaining, lookahead = self._follow(here)

        # Speed: cruise, slowed for the remaining distance (stop at stop_distance), for turns and near obstacles.
        if to_target < config.approach_distance:
            remaining = to_target
        current_speed = float(np.hypot(*np.asarray(info["velocity_world"][:2])))
        to_go = remaining - config.stop_distance
        braking_room = max(to_go - current_speed * config.response_time, 0.0)
        speed = min(self.max_speed, math.sqrt(2.0 * config.braking * braking_room), 0.8 * abs(to_go))
        speed = math.copysign(speed, to_go)
        clearance = float(self.grid.footprints.distance(here[None])[0]) - self.drone_radius
        speed *= float(np.clip(clearance / 1.0, 0.35, 1.0))

        direction = lookahead - here
        norm = float(np.hypot(*direction))
        direction = direction / norm if norm > 1e-6 else np.array([math.cos(yaw), math.sin(yaw)])
        heading = math.atan2(direction[1], direction[0])
        if to_target < config.approach_distance:
            heading = math.atan2(target[1] - here[1], target[0] - here[0])
        yaw_error = _wrap(heading - yaw)
        speed *= max(0.0, math.cos(min(abs(yaw_error), math.pi / 2))) ** 2 if abs(yaw_error) > 0.3 else 1.0

        velocity_world = direction * speed
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        vx = velocity_world[0] * cos_yaw + velocity_world[1] * sin_yaw
        vy = -velocity_world[0] * sin_yaw + velocity_world[1] * cos_yaw
        altitude = config.approach_altitude if to_target < config.approach_distance else config.cruise_altitude
        vz = float(np.clip(1.2 * (altitude - position[2]), -0.8, 0.8))
        yaw_rate = float(np.clip(config.yaw_gain * yaw_error, -self.max_yaw_rate, self.max_yaw_rate))

        desired = np.array([vx, vy, vz, yaw_rate])
        dt = float(info.get("dt") or self.dt)  # the real frame interval under a camera timing model
        step = np.array([config.max_acceleration] * 3 + [config.max_yaw_acceleration]) * dt
        self._command = self._command + np.clip(desired - self._command, -step, step)
        return self._command.astype(np.float32)

    def _follow(self, here: np.ndarray) -> Tuple[float, float, np.ndarray]:
        """(distance to the path, path length left, look-ahead point), advancing the progress index."""
        path = self.path
        window = path[self._progress:self._progress + 40]
        gaps = np.hypot(*(window - here).T)
        nearest = self._progress + int(np.argmin(gaps))
        self._progress = nearest
        deviation = float(gaps.min())
        segments = np.hypot(*np.diff(path[nearest:], axis=0).T)
        remaining = deviation + float(segments.sum()) if len(segments) else float(np.hypot(*(path[-1] - here)))
        travelled = np.concatenate([[0.0], np.cumsum(segments)])
        ahead = nearest + int(np.searchsorted(travelled, self.config.lookahead))
        return deviation, remaining, path[min(ahead, len(path) - 1)]


class _Grid:
    """Planning grid around the start and the target with a Dijkstra cost-to-go towards the target."""

    def __init__(self, scene: Scene, start: np.ndarray, drone_radius: float, config: ExpertConfig):
        self.config = config
        target = np.asarray(scene.target_position[:2], dtype=np.float64)
        # The target itself is an obstacle the drone must not touch.
        base = scene.layout.footprints
        circles = np.vstack([base.circles, [[target[0], target[1], scene.target_radius]]])
        self.footprints = Footprints(circles, base.boxes)
        half = scene.layout.half_size - 0.5
        low = np.maximum(np.minimum(start, target) - config.grid_margin, -half)
        high = np.minimum(np.maximum(start, target) + config.grid_margin, half)
        self.resolution = config.grid_resolution
        self.origin = low
        self.shape = tuple(int(v) for v in np.ceil((high - low) / self.resolution) + 1)
        xs = low[0] + np.arange(self.shape[0]) * self.resolution
        ys = low[1] + np.arange(self.shape[1]) * self.resolution
        cells = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)
        clearance = self.footprints.distance(cells).reshape(self.shape) - drone_radius
        # the target is the goal: free its blocking circle so the path ends at its centre
        goal_zone = np.hypot(cells[:, 0] - target[0], cells[:, 1] - target[1]).reshape(self.shape) \
            < scene.target_radius + drone_radius + config.safety_margin + 0.5
        self.blocked = (clearance < config.safety_margin) & ~goal_zone
        self.clearance = clearance
        self.cell_cost = 1.0 + 4.0 * np.clip(config.preferred_clearance - clearance, 0.0, None)
        self.target = target
        self.cost_to_go = self._dijkstra(self._cell(target))

    def _cell(self, point: np.ndarray) -> Tuple[int, int]:
        index = np.round((point - self.origin) / self.resolution).astype(int)
        return int(np.clip(index[0], 0, self.shape[0] - 1)), int(np.clip(index[1], 0, self.shape[1] - 1))

    def _point(self, cell: Tuple[int, int]) -> np.ndarray:
        return self.origin + np.asarray(cell, dtype=np.float64) * self.resolution

    def _dijkstra(self, goal: Tuple[int, int]) -> np.ndarray:
        cost = np.full(self.shape, np.inf)
        cost[goal] = 0.0
        queue = [(0.0, goal)]
        nx, ny = self.shape
        cell_cost, blocked = self.cell_cost, self.blocked
        moves = [(-1, 0, 1.0), (1, 0, 1.0), (0, -1, 1.0), (0, 1, 1.0),
                 (-1, -1, SQRT2), (-1, 1, SQRT2), (1, -1, SQRT2), (1, 1, SQRT2)]
        while queue:
            value, (i, j) = heapq.heappop(queue)
            if value > cost[i, j]:
                continue
            for di, dj, length in moves:
                a, b = i + di, j + dj
                if 0 <= a < nx and 0 <= b < ny and not blocked[a, b]:
                    candidate = value + length * cell_cost[a, b]
                    if candidate < cost[a, b]:
                        cost[a, b] = candidate
                        heapq.heappush(queue, (candidate, (a, b)))
        return cost

    def path_from(self, position: np.ndarray) -> np.ndarray:
        """Steepest descent on the cost-to-go from ``position`` to the target, shortcut where the line is clear."""
        cell = self._cell(position)
        if not math.isfinite(self.cost_to_go[cell]):
            cell = self._nearest_reachable(cell)
        cells: List[Tuple[int, int]] = [cell]
        nx, ny = self.shape
        while self.cost_to_go[cell] > 0.0 and len(cells) < nx * ny:
            i, j = cell
            best = min(((self.cost_to_go[a, b], (a, b)) for a in range(max(i - 1, 0), min(i + 2, nx))
                        for b in range(max(j - 1, 0), min(j + 2, ny))), key=lambda item: item[0])
            if best[1] == cell:
                break
            cell = best[1]
            cells.append(cell)
        points = [position] + [self._point(c) for c in cells] + [self.target]
        return self._shortcut(np.asarray(points))

    def _nearest_reachable(self, cell: Tuple[int, int]) -> Tuple[int, int]:
        reachable = np.argwhere(np.isfinite(self.cost_to_go))
        nearest = reachable[np.argmin(np.hypot(*(reachable - np.asarray(cell)).T))]
        return int(nearest[0]), int(nearest[1])

    def _clear(self, a: np.ndarray, b: np.ndarray) -> bool:
        steps = max(2, int(np.hypot(*(b - a)) / (self.resolution * 0.5)))
        samples = a[None] + np.linspace(0.0, 1.0, steps)[:, None] * (b - a)[None]
        index = np.clip(np.round((samples - self.origin) / self.resolution).astype(int), 0,
                        np.asarray(self.shape) - 1)
        free = ~self.blocked[index[:, 0], index[:, 1]]
        roomy = self.clearance[index[:, 0], index[:, 1]] >= self.config.safety_margin + 0.4
        return bool((free & roomy)[1:-1].all())

    def _shortcut(self, points: np.ndarray) -> np.ndarray:
        """Greedy line-of-sight shortening; keeps detours that hug obstacles, then resamples every 0.25 m."""
        kept = [points[0]]
        index = 0
        while index < len(points) - 1:
            far = len(points) - 1
            while far > index + 1 and not self._clear(points[index], points[far]):
                far -= 1
            kept.append(points[far])
            index = far
        dense = [kept[0]]
        for a, b in zip(kept[:-1], kept[1:]):
            count = max(1, int(math.ceil(np.hypot(*(b - a)) / 0.25)))
            dense.extend(a + (b - a) * (k / count) for k in range(1, count + 1))
        return np.asarray(dense)


def _wrap(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))
