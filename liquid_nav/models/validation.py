"""Type checks for the model config dataclasses, so a bad file names the field and the expected type."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Type


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
