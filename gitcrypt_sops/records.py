"""``Record``: typed named tuples without importing :mod:`typing` at run time.

Importing ``typing`` costs about 6 ms, a tenth of a small decrypt, so modules on
the encrypt/decrypt path import it only for the type checker.  Type checkers see
``Record`` as ``typing.NamedTuple``; at run time a class written as
``class Point(Record): x: int; y: int = 0`` becomes a subclass of
``collections.namedtuple("Point", "x y", defaults=(0,))`` carrying the class body's
methods.
"""

from __future__ import annotations

__all__ = ["Record"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as Record

else:
    from collections import namedtuple

    class _RecordMeta(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # Record itself
                return super().__new__(mcls, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", {}))  # needs `from __future__ import annotations`
            has_default = [field in namespace for field in fields]
            if has_default != sorted(has_default):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            defaults = tuple(namespace.pop(field) for field in fields if field in namespace)
            base = namedtuple(name, fields, defaults=defaults, module=namespace.get("__module__"))
            namespace["__slots__"] = ()
            return type(name, (base,), namespace)

    class Record(metaclass=_RecordMeta):
        __slots__ = ()
