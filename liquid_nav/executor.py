"""One executor layer for embarrassingly parallel jobs (evaluation episodes, collection): in this process, a local
process pool, or a Ray cluster, behind one call.

:func:`map_unordered` runs ``fn(item)`` for every item and yields the results as they finish. Each worker
process calls ``initializer(*initargs)`` once before its first item (build a simulator, load a model) and
keeps what it built in module state for ``fn``; ``fn``, ``initializer`` and the items must be picklable
(module-level functions, plain data). Worker processes start with ``threads_per_worker`` BLAS / OpenMP
threads (``OMP_NUM_THREADS`` and friends), so workers do not fight over the cores.

``executor="local"``: ``workers`` <= 1 runs everything in this process (then ``finalizer`` runs at the end);
more workers form a ``multiprocessing`` spawn pool. ``executor="ray"``: one Ray actor per worker (``workers``
None or 0: one per CPU of the cluster) on the cluster at ``ray_address`` (None: the one this process is
connected to, else a new local one; ``"auto"``: an existing cluster found from this machine). The package
must be importable on every node (installed, or shipped with a Ray ``runtime_env``).
"""
from __future__ import annotations

import multiprocessing
import os
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

EXECUTORS = ("local", "ray")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_environment(threads: int) -> Dict[str, str]:
    """The environment variables that cap the BLAS / OpenMP thread pools of a worker process."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def map_unordered(fn: Callable[[Item], Result], items: Iterable[Item], workers: Optional[int] = 1,
                  initializer: Optional[Callable[..., None]] = None, initargs: Sequence[Any] = (),
                  executor: str = "local", ray_address: Optional[str] = None,
                  finalizer: Optional[Callable[[], None]] = None, threads_per_worker: int = 1) -> Iterator[Result]:
    """``fn(item)`` for every item, yielded in the order they finish (see the module docstring)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; expected one of {list(EXECUTORS)}")
    if executor == "ray":
        return _ray_map(fn, list(items), workers, initializer, tuple(initargs), ray_address, threads_per_worker)
    if ray_address is not None:
        raise ValueError("ray_address is only meaningful with executor='ray'")
    if not workers or workers <= 1:
        return _serial_map(fn, items, initializer, tuple(initargs), finalizer)
    return _pool_map(fn, items, workers, initializer, tuple(initargs), threads_per_worker)


def _serial_map(fn, items, initializer, initargs, finalizer) -> Iterator:
    if initializer is not None:
        initializer(*initargs)
    try:
        for item in items:
            yield fn(item)
    finally:
        if finalizer is not None:
            finalizer()


@contextmanager
def _environment(variables: Dict[str, str]) -> Iterator[None]:
    """Set ``variables`` in this process while worker processes are spawned (they inherit them)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _pool_map(fn, items, workers: int, initializer, initargs, threads: int) -> Iterator:
    context = multiprocessing.get_context("spawn")
    with _environment(thread_environment(threads)):
        pool = context.Pool(workers, initializer=initializer, initargs=initargs)
    with pool:
        yield from pool.imap_unordered(fn, items)


def _ray_map(fn, items: list, workers: Optional[int], initializer, initargs, address: Optional[str],
             threads: int) -> Iterator:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as error:
        raise RuntimeError("executor 'ray' needs Ray: pip install 'liquid_nav[ray]'") from error
    if not items:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        count = workers or int(ray.cluster_resources().get("CPU", 1))
        worker_class = ray.remote(num_cpus=1, runtime_env={"env_vars": thread_environment(threads)})(_RayWorker)
        actors = [worker_class.remote(fn, initializer, initargs) for _ in range(min(count, len(items)))]
        try:
            yield from ActorPool(actors).map_unordered(lambda actor, item: actor.run.remote(item), items)
        finally:
            for actor in actors:
                ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()


class _RayWorker:
    """One Ray actor: one worker process that ran ``initializer`` and then runs ``fn`` per item."""

    def __init__(self, fn, initializer, initargs) -> None:
        self.fn = fn
        if initializer is not None:
            initializer(*initargs)

    def run(self, item):
        return self.fn(item)
