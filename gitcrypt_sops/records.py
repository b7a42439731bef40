"""``Record``: typed named tuples without importing :mod:`typing` or :mod:`collections`.

Importing ``typing`` costs about 6 ms and ``collections`` (with the modules it
pulls in) a few more, a large share of a small decrypt, so modules on the
encrypt/decrypt path import them only for the type checker.  Type checkers see
``Record`` as ``typing.NamedTuple``; at run time a class written as
``class Point(Record): x: int; y: int = 0`` becomes a tuple subclass with the
named-tuple surface the project uses: positional or keyword construction with
defaults, attribute access, ``_fields``, ``_replace``, ``_asdict``, the
named-tuple ``repr``, pickling, and the class body's methods.
"""

from __future__ import annotations

__all__ = ["Record"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as Record

else:

    def _field(index):
        return property(lambda self: tuple.__getitem__(self, index), doc=f"field {index}")

    def _bind(cls, args, kwargs):
        fields, defaults = cls._fields, cls._field_defaults
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__} takes {len(fields)} fields, got {len(args)}")
        values = list(args)
        for name in fields[len(args):]:
            if name in kwargs:
                values.append(kwargs.pop(name))
            elif name in defaults:
                values.append(defaults[name])
            else:
                raise TypeError(f"{cls.__name__} is missing the field {name!r}")
        if kwargs:
            raise TypeError(f"{cls.__name__} got unexpected or repeated fields {sorted(kwargs)}")
        return values

    class _RecordBase(tuple):
        __slots__ = ()

        def __new__(cls, *args, **kwargs):
            return tuple.__new__(cls, _bind(cls, args, kwargs) if kwargs or len(args) != len(cls._fields) else args)

        def _replace(self, **changes):
            return type(self)(**{**self._asdict(), **changes})

        def _asdict(self):
            return dict(zip(self._fields, self))

        def __repr__(self):
            inner = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self))
            return f"{type(self).__name__}({inner})"

        def __getnewargs__(self):
            return tuple(self)

    class _RecordMeta(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # Record itself
                return super().__new__(mcls, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", {}))  # needs `from __future__ import annotations`
            has_default = [field in namespace for field in fields]
            if has_default != sorted(has_default):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            namespace["_field_defaults"] = {field: namespace.pop(field) for field in fields if field in namespace}
            namespace["_fields"] = fields
            namespace["__match_args__"] = fields
            namespace["__slots__"] = ()
            for index, field in enumerate(fields):
                namespace[field] = _field(index)
            return type(name, (_RecordBase,), namespace)

    class Record(metaclass=_RecordMeta):
        __slots__ = ()
