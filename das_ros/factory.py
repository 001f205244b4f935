"""Message factories: one call, ``make(typename, **fields)``, for rclpy messages and rosbags dataclasses.

``messages.py``, ``markers.py`` and ``diagnostics.py`` build messages only through a factory, so the very same
code fills a message published by the node (rclpy classes) and one written to a bag by ``das bag``
(rosbags dataclasses). Builders pass plain Python values: numbers, strings, lists (also for numeric
arrays) and nested messages made by the same factory. Neither factory imports rclpy at module import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

__all__ = ["MessageFactory", "RclpyFactory", "RosbagsFactory", "namespace_factory"]


class MessageFactory(Protocol):
    def __call__(self, typename: str, /, **fields: Any) -> Any: ...


_NUMPY_DTYPES = {
    "bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64,
    "uint64": np.uint64, "float32": np.float32, "float64": np.float64,
}


class RosbagsFactory:
    """Builds rosbags dataclasses from a ``Typestore``.

    rosbags dataclasses have no defaults, so missing fields get the ROS default (0, "", False, empty
    array, nested default message). Numeric arrays become numpy arrays of the field's dtype, as rosbags'
    CDR serializer requires. This also hides distro differences (Jazzy's Marker has texture fields that
    Humble's has not): a builder never names fields it does not set.
    """

    def __init__(self, typestore: Any) -> None:
        self.typestore = typestore

    def __call__(self, typename: str, /, **fields: Any) -> Any:
        try:
            cls = self.typestore.types[typename]
            _, defs = self.typestore.fielddefs[typename]
        except KeyError:
            raise KeyError(f"message type {typename!r} is not in the typestore") from None
        known = {name for name, _ in defs}
        unknown = set(fields) - known
        if unknown:
            raise KeyError(f"{typename} has no field(s) {sorted(unknown)}")
        kwargs = {}
        for name, desc in defs:
            kwargs[name] = self._convert(desc, fields[name]) if name in fields else self._default(desc)
        return cls(**kwargs)

    def _convert(self, desc: Any, value: Any) -> Any:
        kind, rest = desc
        if kind.name in ("ARRAY", "SEQUENCE"):
            (sub_kind, sub), _n = rest
            if sub_kind.name == "BASE" and sub[0] in _NUMPY_DTYPES:
                return np.asarray(value, dtype=_NUMPY_DTYPES[sub[0]])
            return list(value)
        if kind.name == "BASE" and rest[0] in ("byte", "char") and isinstance(value, (bytes, bytearray)):
            return int(value[0])
        return value

    def _default(self, desc: Any) -> Any:
        kind, rest = desc
        if kind.name == "BASE":
            t = rest[0]
            return "" if t in ("string", "wstring") else (False if t == "bool" else (0.0 if t.startswith("float") else 0))
        if kind.name == "NAME":
            return self(rest)
        (sub_kind, sub), n = rest
        if sub_kind.name == "BASE" and sub[0] in _NUMPY_DTYPES:
            return np.zeros(n if kind.name == "ARRAY" else 0, dtype=_NUMPY_DTYPES[sub[0]])
        if kind.name == "ARRAY":
            return [self._default((sub_kind, sub)) for _ in range(n)]
        return []


class RclpyFactory:
    """Builds real ROS 2 messages by importing ``<pkg>.msg`` modules on first use (needs a ROS environment).

    ``byte`` fields (``DiagnosticStatus.level``) are ``bytes`` in rclpy, so ints are converted.
    """

    _BYTE_FIELDS = {("diagnostic_msgs/msg/DiagnosticStatus", "level")}

    def __init__(self) -> None:
        self._classes: dict[str, Any] = {}

    def cls(self, typename: str) -> Any:
        if typename not in self._classes:
            pkg, sub, name = typename.split("/")
            self._classes[typename] = getattr(importlib.import_module(f"{pkg}.{sub}"), name)
        return self._classes[typename]

    def __call__(self, typename: str, /, **fields: Any) -> Any:
        for t, f in self._BYTE_FIELDS:
            if t == typename and isinstance(fields.get(f), int):
                fields[f] = bytes([fields[f]])
        return self.cls(typename)(**fields)


def namespace_factory() -> Callable[..., Any]:
    """A factory of ``types.SimpleNamespace`` objects with a ``_type`` attribute (for tests and inspection)."""
    from types import SimpleNamespace

    def make(typename: str, /, **fields: Any) -> Any:
        return SimpleNamespace(_type=typename, **fields)

    return make
