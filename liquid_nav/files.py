"""Files the package writes and reads: writes are atomic (a temporary file beside the target, fsync,
rename), reads of YAML files fail with one error naming the file."""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Type, Union

PathLike = Union[str, "os.PathLike[str]"]


@lru_cache(maxsize=1)
def _new_file_mode() -> int:
    """The permissions ``open()`` gives a new file under the process umask (read once: ``os.umask`` sets it)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (readers see the old file or the whole new one, never a part).

    The file gets the permissions of one written with ``open()`` (not the temporary file's 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), _new_file_mode())
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_yaml(path: PathLike, error: Type[Exception]) -> Any:
    """The YAML document in the UTF-8 file ``path``.

    An unreadable file, text that is not UTF-8 or invalid YAML raises ``error`` with one line naming the file.
    """
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as failure:
        raise error(f"{path}: not UTF-8 text (byte {failure.object[failure.start]:#04x} at offset "
                    f"{failure.start}); expected a UTF-8 encoded YAML file") from None
    except OSError as failure:
        raise error(f"{path}: cannot read the file ({failure.strerror or failure})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as failure:
        mark = getattr(failure, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(failure, 'problem', None) or failure}") from failure
