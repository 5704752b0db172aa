"""Validation shared by every config the package reads: dataclass fields and YAML mappings.

Errors always name where the bad value sits (``SafetyConfig.max_vx``, ``file.yaml: key 'target.size'``)
and what was expected, and are raised as the caller's own error type.
"""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

Range = Tuple[float, float]
_REQUIRED = object()


def is_number(value: Any) -> bool:
    """A finite int or float (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_number_list(value: Any, length: int) -> bool:
    """A list or tuple of ``length`` finite numbers."""
    return isinstance(value, (list, tuple)) and len(value) == length and all(is_number(v) for v in value)


def require_positive(config: Any, names: Sequence[str], error: Type[Exception] = ValueError) -> None:
    """Raise ``error`` unless each attribute in ``names`` of the dataclass ``config`` is a finite number > 0."""
    for name in names:
        value = getattr(config, name)
        if not (is_number(value) and value > 0):
            raise error(f"{type(config).__name__}.{name} is {value!r}; expected a finite number > 0")


def check_field_types(config: Any, error: Type[Exception], where: str) -> None:
    """Raise ``error`` naming ``where.field`` for any int / float / str field holding another type.

    Integers are accepted for float fields (and stored as floats); booleans are never numbers here.
    """
    for field in fields(config):
        value = getattr(config, field.name)
        expected = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        if expected == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise error(f"{where}.{field.name} must be an integer, got {value!r}")
        elif expected == "float":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise error(f"{where}.{field.name} must be a number, got {value!r}")
            object.__setattr__(config, field.name, float(value))
        elif expected == "str" and not isinstance(value, str):
            raise error(f"{where}.{field.name} must be a string, got {value!r}")


class MappingReader:
    """A mapping from a YAML file with its key path: typed reads whose errors name file, key and expectation.

    Every read marks its key as used; :meth:`finish` refuses keys nobody read (typos). Errors are raised as
    ``error(f"{source}: key '{path}': expected ...")``.
    """

    def __init__(self, source: str, path: str, data: Any, error: Type[Exception] = ValueError) -> None:
        self.source = source
        self.path = path
        self.error = error
        if not isinstance(data, dict):
            self.fail("", f"a mapping, got {type(data).__name__} {data!r}")
        self.data: Dict[str, Any] = data
        self.used: set = set()

    def fail(self, key: str, expected: str) -> None:
        where = ".".join(part for part in (self.path, key) if part) or "<top level>"
        raise self.error(f"{self.source}: key '{where}': expected {expected}")

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            self.fail(key, "this key to be present (it is required)")
        return default

    def _value(self, key: str, default: Any) -> Any:
        return self._get(key, _REQUIRED if default is None else default)

    def number(self, key: str, default: Any = None, low: float = -math.inf, high: float = math.inf,
               integer: bool = False) -> Any:
        value = self._value(key, default)
        kind = "an integer" if integer else "a number"
        if not is_number(value) or (integer and not isinstance(value, int)) or not (low <= value <= high):
            self.fail(key, f"{kind} in [{low}, {high}], got {value!r}")
        return int(value) if integer else float(value)

    def range(self, key: str, default: Any = None, low: float = -math.inf, high: float = math.inf) -> Range:
        value = self._value(key, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            self.fail(key, f"a [min, max] pair of numbers (or one number), got {value!r}")
        lo, hi = float(value[0]), float(value[1])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            self.fail(key, f"finite numbers, got {value!r}")
        if lo > hi:
            self.fail(key, f"min <= max, got [{lo}, {hi}]")
        if lo < low or hi > high:
            self.fail(key, f"values within [{low}, {high}], got [{lo}, {hi}]")
        return lo, hi

    def vector(self, key: str, default: Any = None, length: int = 3, low: float = -math.inf) -> Tuple[float, ...]:
        value = self._value(key, default)
        if not is_number_list(value, length) or not all(v >= low for v in value):
            bound = f" >= {low}" if math.isfinite(low) else ""
            self.fail(key, f"a list of {length} finite numbers{bound}, got {value!r}")
        return tuple(float(v) for v in value)

    def choice(self, key: str, options: Sequence[str], default: Any = None) -> str:
        value = self._value(key, default)
        if value not in options:
            self.fail(key, f"one of {list(options)}, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"true or false, got {value!r}")
        return value

    def text(self, key: str, default: Optional[str] = None) -> str:
        value = self._value(key, default)
        if not isinstance(value, str):
            self.fail(key, f"a string, got {value!r}")
        return value

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as it is (for callers that check it themselves)."""
        return self._value(key, default)

    def child(self, key: str, required: bool = True) -> Optional["MappingReader"]:
        value = self._get(key, _REQUIRED if required else None)
        if value is None:
            if required:  # ``key: null`` (or an empty ``key:``) where a mapping is required
                self.fail(key, "a mapping, got nothing (null)")
            return None
        return MappingReader(self.source, self._join(key), value, self.error)

    def children(self, key: str) -> List["MappingReader"]:
        value = self._get(key, [])
        if not isinstance(value, list):
            self.fail(key, f"a list of mappings, got {value!r}")
        prefix = self._join(key)
        return [MappingReader(self.source, f"{prefix}[{index}]", item, self.error) for index, item in enumerate(value)]

    def finish(self) -> None:
        """Refuse keys that were never read."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(unknown[0], f"one of the known keys {sorted(self.used)} (unknown key '{unknown[0]}')")

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key
