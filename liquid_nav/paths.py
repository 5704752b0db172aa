"""Where the package's data lives: world and vehicle files (and the other installed share files).

Works from a source checkout (``pip install -e .``), a plain pip install (data under
``<prefix>/share/liquid_nav``) and a colcon/ament install (found through the ament index).
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = "liquid_nav"


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The directory holding ``sim_worlds/``, ``config/`` and ``launch/``."""
    override = os.environ.get("LIQUID_NAV_SHARE")
    if override:
        return Path(override)
    source_root = Path(__file__).resolve().parent.parent
    if (source_root / "sim_worlds").is_dir() and (source_root / "package.xml").is_file():
        return source_root
    installed = Path(sys.prefix) / "share" / PACKAGE
    if installed.is_dir():
        return installed
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception as error:  # noqa: BLE001 - any failure means "not found"
        raise FileNotFoundError(
            f"cannot find liquid_nav's data files (looked in {source_root}, {installed} and the ament index); "
            "set LIQUID_NAV_SHARE to the directory holding sim_worlds/"
        ) from error


def worlds_dir() -> Path:
    return share_dir() / "sim_worlds"


def config_dir() -> Path:
    """Parameter files of the nodes and the training / evaluation presets (``config/train``, ``config/eval``)."""
    return share_dir() / "config"


def named_yaml_file(name_or_path: "str | os.PathLike[str]", directory: Path, kind: str) -> Path:
    """A YAML file given by path, or by name (``forest`` -> ``directory/forest.yaml``).

    Raises FileNotFoundError naming what was looked for and the names that exist, for callers to
    re-raise as their own error type.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise FileNotFoundError(f"{candidate}: {kind} file not found")
        return candidate
    named = directory / f"{name_or_path}.yaml"
    if not named.is_file():
        available = ", ".join(sorted(path.stem for path in directory.glob("*.yaml")))
        raise FileNotFoundError(f"unknown {kind} {str(name_or_path)!r}: expected one of {available} "
                                f"(files in {directory}) or a path to a {kind} YAML file")
    return named


SHIPPED_HEADS = ("cfc_ncp", "lstm", "ltc_ncp")  # the shipped models (checkpoints/<head>/), the default first


def shipped_model(head: str = "cfc_ncp", onnx: bool = False) -> Path:
    """The shipped policy of ``head``: ``checkpoints/<head>/policy.lnav`` (or its ONNX step export).

    Raises FileNotFoundError naming the file and the shipped heads.
    """
    if head not in SHIPPED_HEADS:
        raise FileNotFoundError(f"no shipped model for head {head!r}; shipped: {', '.join(SHIPPED_HEADS)}")
    path = share_dir() / "checkpoints" / head / ("policy.onnx" if onnx else "policy.lnav")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped {head} model is missing from this install "
                                "(a source checkout has it under checkpoints/)")
    return path
