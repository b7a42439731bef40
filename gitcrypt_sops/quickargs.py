"""Reading the everyday command lines without argparse.

Each command declares its flags once, as ``add_argument`` calls on the parser it
is handed.  Handed a :class:`FlagTable`, those calls are recorded instead, and
:meth:`FlagTable.values` reads a command line written in the plain forms
(``--flag value``, ``--flag=value``, ``-f value``, switches, positionals in one
run) into the values argparse would give it.  Anything else (help, abbreviated
flags, ``--``, a value that starts with ``-``, a declaration it does not model,
any error) makes it return None, and :mod:`gitcrypt_sops.argparser` parses the
same declarations with argparse, with argparse's behaviour and messages.  Importing
argparse (and the regex, enum and collections modules it pulls in) is about a
third of a small run's start-up.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Declarations(Protocol):
        """What the commands' declaration functions call: argparse's parser or a FlagTable."""

        def add_argument(self, *names: str, **options: Any) -> Any: ...

        def add_argument_group(self, *args: Any, **kwargs: Any) -> Any: ...

        def set_defaults(self, **defaults: Any) -> None: ...


#: the values of ``argparse.SUPPRESS`` and ``argparse.REMAINDER``, so that declarations need not import argparse
SUPPRESS = "==SUPPRESS=="
REMAINDER = "..."

_MODELLED = frozenset({"dest", "action", "type", "default", "metavar", "help", "nargs", "required"})
_ACTIONS = frozenset({"store", "store_true", "append"})


class Namespace:
    """The parsed flags as attributes, like ``argparse.Namespace``."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other) if hasattr(other, "__dict__") else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Namespace(" + ", ".join(f"{name}={value!r}" for name, value in sorted(vars(self).items())) + ")"


class _Flag:
    __slots__ = ("action", "convert", "default", "dest", "required")

    def __init__(self, dest: str, action: str, convert: Any, default: Any, required: bool = False) -> None:
        self.dest, self.action, self.convert, self.default = dest, action, convert, default
        self.required = required


class FlagTable:
    """Records one parser's declarations; ``modelled`` turns False at the first it cannot replay."""

    def __init__(self) -> None:
        self.options: dict[str, _Flag | None] = {"-h": None, "--help": None}  # None: leave the line to argparse
        self.flags: list[_Flag] = []
        self.positionals: list[_Flag] = []
        self.parser_defaults: dict[str, Any] = {}
        self.modelled = True

    # -- the declaration calls ---------------------------------------------------------

    def add_argument(self, *names: str, **options: Any) -> None:
        action = options.get("action") or "store"
        if action in ("version", "help"):
            self.options.update(dict.fromkeys(names))
            return
        if set(options) - _MODELLED or action not in _ACTIONS or not names:
            self.modelled = False
            return
        convert = options.get("type")
        nargs = options.get("nargs")
        if names[0][:1] != "-":
            if (len(names) > 1 or action != "store" or nargs not in (None, "?") or convert is not None
                    or "required" in options):
                self.modelled = False
                return
            flag = _Flag(options.get("dest", names[0]), "store?" if nargs == "?" else "store!", None, None)
            flag.default = self._default_for(flag.dest, options, None)
            self.positionals.append(flag)
            self.flags.append(flag)
            return
        if nargs is not None or (convert is not None and (action != "store" or convert not in (int, str))):
            self.modelled = False
            return
        dest = options.get("dest") or self._dest(names)
        flag = _Flag(dest, action, convert, self._default_for(dest, options, False if action == "store_true" else None),
                     bool(options.get("required")))
        if isinstance(flag.default, str) and convert is not None:
            self.modelled = False  # argparse would convert a string default
        self.options.update(dict.fromkeys(names, flag))
        self.flags.append(flag)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> FlagTable:
        return self

    def set_defaults(self, **defaults: Any) -> None:
        for flag in self.flags:
            if flag.dest in defaults:
                flag.default = defaults[flag.dest]
        self.parser_defaults.update(defaults)

    def add_subparsers(self, *args: Any, **kwargs: Any) -> Any:
        self.modelled = False
        raise _NotModelled

    def add_mutually_exclusive_group(self, *args: Any, **kwargs: Any) -> Any:
        self.modelled = False
        raise _NotModelled

    def _default_for(self, dest: str, options: dict[str, Any], fallback: Any) -> Any:
        if "default" in options:
            return options["default"]
        return self.parser_defaults.get(dest, fallback)

    @staticmethod
    def _dest(names: tuple[str, ...]) -> str:
        long_names = [name for name in names if name.startswith("--")]
        return (long_names or list(names))[0].lstrip("-").replace("-", "_")

    # -- reading a command line ------------------------------------------------------

    @property
    def readable(self) -> bool:
        """Whether :meth:`values` can read lines for these declarations at all."""
        positionals = self.positionals
        return self.modelled and (len(positionals) < 2 or all(flag.action == "store?" for flag in positionals))

    def values(self, argv: list[str]) -> dict[str, Any] | None:
        """The parsed values (defaults included), or None where argparse must decide."""
        if not self.readable:
            return None
        positionals = self.positionals
        values: dict[str, Any] = dict(self.parser_defaults)
        for declared in self.flags:
            values[declared.dest] = list(declared.default) if isinstance(declared.default, list) else declared.default
        given: set[str] = set()
        taken = 0  # positional arguments read so far
        # argparse (3.11) assigns every positional at the first run of positional arguments,
        # so a second run after an option is an error there: leave such a line to it
        run_closed = False
        options = self.options
        index, count = 0, len(argv)
        while index < count:
            arg = argv[index]
            index += 1
            if arg[:1] != "-" or arg == "-":
                if run_closed or taken == len(positionals):
                    return None
                values[positionals[taken].dest] = arg
                taken += 1
                continue
            run_closed = taken > 0
            name, equals, attached = arg.partition("=") if arg[:2] == "--" else (arg, "", "")
            flag = options.get(name)
            if flag is None:
                return None
            given.add(flag.dest)
            if flag.action == "store_true":
                if equals:
                    return None
                values[flag.dest] = True
                continue
            if equals:
                value = attached
            elif index < count:
                value = argv[index]
                index += 1
            else:
                return None
            if not value or value[0] == "-":
                return None
            if flag.convert is int:
                try:
                    converted: Any = int(value)
                except ValueError:
                    return None
            else:
                converted = value
            if flag.action == "append":
                values[flag.dest] = [*(values[flag.dest] or ()), converted]
            else:
                values[flag.dest] = converted
        if positionals and taken == 0 and positionals[0].action == "store!":
            return None
        if any(flag.required and flag.dest not in given for flag in self.flags):
            return None
        return values


class _NotModelled(Exception):
    """A declaration a FlagTable does not model; the caller falls back to argparse."""


def record(declare: Any, table: FlagTable | None = None) -> FlagTable:
    """A FlagTable holding what ``declare(table)`` declares (``modelled`` False if it cannot be replayed)."""
    table = FlagTable() if table is None else table
    try:
        declare(table)
    except _NotModelled:
        table.modelled = False
    return table
