"""argparse types and error lines shared by every area's ``liquid-nav`` subcommands."""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def seed_argument(text: str) -> int:
    """argparse type: an episode seed (a non-negative integer)."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return seed


def output_file_argument(text: str) -> Path:
    """argparse type: a file the command may create (not a directory; missing parent directories are created)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; expected a file name")
    _check_creatable(text, path.parent)
    return path


def output_dir_argument(text: str) -> Path:
    """argparse type: a directory the command may create or write into."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is an existing file; expected a directory")
    _check_creatable(text, path)
    return path


def image_file_argument(text: str) -> Path:
    """argparse type: an image file to create; the suffix picks the format and a missing one becomes ``.png``."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = output_file_argument(text)
    if not path.suffix:
        path = output_file_argument(f"{text}.png")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise argparse.ArgumentTypeError(f"{text}: {path.suffix!r} is not an image format; expected a name ending in "
                                         + ", ".join(f".{name}" for name in sorted(formats)))
    return path


def _check_creatable(text: str, path: Path) -> None:
    """Refuse ``path`` unless it is, or can be created in, a writable directory."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: the directory {existing} is not writable")


def os_error_line(error: OSError) -> str:
    """A failed file operation in one line: the file and the reason."""
    return f"{error.filename}: {error.strerror}" if error.filename and error.strerror else str(error)
