"""Large YAML files on two cores: the text is cut at a top-level key and the second
half goes through the same load, walk and splice in a forked child.

The cut is made only where it cannot change the result: one block-mapping
document with no column-0 sequence or document marker, cut just before a run of
column-0 comments and a column-0 key, after a line that ends a value.  Comments
at column 0 there belong to the root mapping whichever side they are read from,
so every leaf and comment gets the AAD it gets in one piece; the MAC is the same
because the child hands back the bytes it would have hashed, which the parent
feeds on after its own.  Whatever the halves cannot settle alone (an alias whose
anchor is in the other half, a key on both sides, the ``sops`` block elsewhere
than at the end, a MAC that does not verify) and every error make these
functions return None: the caller then runs the whole file in one process, which
reports any error exactly as before.

Each process parses only its own half of the text: at 100k values the two
together held 1.1-1.3x what one process holds (summed PSS 188-210 MiB against
165-166; sops 524-551).  JSON is not split: it would have to be parsed before the
fork, and the child's reference counting then copies every page of its half of
the tree (measured: 1.3-1.8x one process, over half of sops's peak).

Plaintext crosses only a pipe between the two processes, never a file.  Set
``GITCRYPT_SOPS_ONE_PROCESS=1`` to keep every run in one process.
"""

from __future__ import annotations

import marshal
import os
import sys

from .walk import EncryptionRule, Walker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any, TypeVar

    from .api import EncryptOptions
    from .cipher import DataKey
    from .stores.yaml_store import YamlFile

    T = TypeVar("T")

#: how far past the middle a cut is looked for
_SEARCH_LIMIT = 1 << 20
_KEY_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class _NotSplittable(Exception):
    """The halves cannot decide this file alone: run it in one process."""


class _MacCollector(list):  # type: ignore[type-arg]
    """Stands in for the MAC hasher in the child: keeps the bytes for the parent to hash."""

    update = list.append


class Unwrapped:
    """A data key unwrapped for a file the halves then left to one process, which takes
    it over (a KMS is asked once), with the recipients that gave it and the metadata it
    was read from."""

    __slots__ = ("key", "metadata", "used")

    def __init__(self, key: DataKey, used: list[str], metadata: Any) -> None:
        self.key = key
        self.used = used
        self.metadata = metadata


def may_split() -> bool:
    """Whether this process may run a file in two (api checks the size first, before importing this module)."""
    if os.environ.get("GITCRYPT_SOPS_ONE_PROCESS") or not sys.platform.startswith("linux"):
        return False
    return _may_fork()


def _may_fork() -> bool:
    if "grpc" in sys.modules:  # its threads do not survive a fork (a GCP KMS unwrap loads it)
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def find_cut(text: str) -> int | None:
    """Where to cut ``text`` in two (see the module docstring): the first place past the middle, or None."""
    if text.startswith(("---", "...", "%", "-", "{", "[")) or "\n-" in text or "\n..." in text or "\n%" in text:
        return None
    middle = len(text) // 2
    return next(candidate_cuts(text, middle, middle + _SEARCH_LIMIT), None)


def candidate_cuts(text: str, start: int = 0, stop: int | None = None) -> Iterator[int]:
    """Every place between ``start`` and ``stop`` where a cut keeps the result
    (given a document that passes :func:`find_cut`'s whole-text checks)."""
    find = text.find
    line_end = find("\n", start)
    limit = len(text) if stop is None else stop
    while line_end != -1 and line_end < limit:
        line_start = line_end + 1
        if text[line_start : line_start + 1] in _KEY_START:
            cut = _cut_before(text, line_start)
            if cut is not None:
                yield cut
        line_end = find("\n", line_start)


def _cut_before(text: str, key_line: int) -> int | None:
    """The start of the column-0 comments right before ``key_line`` (after the last
    blank line: blank lines after a ``|+`` block are its value), if the content line
    before them ends a value (an empty value's event sits at the next token, which
    would move the comments into its mapping)."""
    cut = position = key_line
    while position > 0:
        previous = text.rfind("\n", 0, position - 1) + 1
        line = text[previous : position - 1].rstrip()
        if not line or line.startswith("#"):
            if line and cut == position:
                cut = previous
            position = previous
            continue
        if "\t#" in line or (line[0] not in _KEY_START and line[0] != " "):
            return None
        # a trailing comment goes to the innermost open collection on either side of the cut
        code = line.split(" #", 1)[0].rstrip()
        words = code.split()
        if not words or code.endswith((":", "-")) or words[-1][0] in "&!" or words[0][0] == "?":
            return None
        return cut
    return None


def _in_two(first: Callable[[], T], second: Callable[[], list[bytes]]) -> tuple[T, list[memoryview]] | None:
    """``first()`` here while a forked child runs ``second()``: (what first returned, the
    parts second returned, as views into one buffer); None if the child failed."""
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # e.g. a process limit: the caller runs the file in one piece
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # the child: never returns, never runs the parent's exit handlers
        try:
            import gc

            gc.disable()  # short-lived: a collection would copy every page it touches
            os.close(read_fd)
            parts = second()
            lengths = [len(part) for part in parts]
            header = b"".join(length.to_bytes(8, "little") for length in [len(parts), *lengths])
            for piece in (header, *parts):
                view = memoryview(piece)
                while view:
                    view = view[os.write(write_fd, view) :]
            status = 0
        except BaseException:  # noqa: BLE001 - any failure: the parent runs the file in one piece
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        mine = first()
        received = _receive(read_fd)
        _, status = os.waitpid(pid, 0)
        pid = 0
        return (mine, received) if status == 0 and received is not None else None
    finally:
        os.close(read_fd)
        if pid:
            import signal

            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _receive(read_fd: int) -> list[memoryview] | None:
    """The parts the child wrote, read into one buffer (no copies); None if cut short."""
    count_bytes = _read_exactly(read_fd, 8)
    if count_bytes is None:
        return None
    lengths_bytes = _read_exactly(read_fd, 8 * int.from_bytes(count_bytes, "little"))
    if lengths_bytes is None:
        return None
    lengths = [int.from_bytes(lengths_bytes[at : at + 8], "little") for at in range(0, len(lengths_bytes), 8)]
    body = _read_exactly(read_fd, sum(lengths))
    if body is None:
        return None
    views, start = [], 0
    for length in lengths:
        views.append(body[start : start + length])
        start += length
    return views


def _read_exactly(read_fd: int, size: int) -> memoryview | None:
    buffer = memoryview(bytearray(size))
    filled = 0
    while filled < size:
        got = os.readv(read_fd, [buffer[filled:]])
        if not got:
            return None
        filled += got
    return buffer


def _top_keys(yaml_file: YamlFile) -> list[str]:
    """The document's top-level keys; _NotSplittable unless it is one spliceable mapping of string keys."""
    from .tree import Comment

    if len(yaml_file.documents) != 1 or not yaml_file.spliceable:
        raise _NotSplittable
    keys = [key for key in yaml_file.documents[0] if key.__class__ is not Comment]
    if any(key.__class__ is not str for key in keys):
        raise _NotSplittable
    return keys


def _split_text(data: bytes | bytearray) -> tuple[str, int] | None:
    """The decoded text and where to cut it, or None."""
    try:
        text = bytes(data).decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    cut = find_cut(text)
    return None if cut is None else (text, cut)


def _two_halves(
    text: str, cut: int, key: DataKey, rule: EncryptionRule, run_half: Callable[[str, Walker, bool], tuple[bytes, list[str]]]
) -> tuple[Walker, bytes, memoryview] | None:
    """``run_half(half, walker, is_second)`` on each side of ``cut`` (the second in a
    child), each with its own walker: (the parent's walker with the child's MAC bytes
    fed after its own, the first half's output, the second's); None if the child
    failed.  _NotSplittable on a top-level key both halves hold."""

    def second() -> list[bytes]:
        collector = _MacCollector()
        walker = _walker(key, rule)  # made after the fork: an encrypting walker draws its own IVs
        walker.hasher = collector  # type: ignore[assignment]
        output, keys = run_half(text[cut:], walker, True)
        return [output, b"".join(collector), marshal.dumps(keys)]

    walkers: list[Walker] = []

    def first() -> tuple[bytes, list[str]]:
        walkers.append(_walker(key, rule))
        return run_half(text[:cut], walkers[0], False)

    both = _in_two(first, second)
    if both is None:
        return None
    (first_output, first_keys), (second_output, mac_bytes, second_keys) = both
    if not set(first_keys).isdisjoint(marshal.loads(second_keys)):
        raise _NotSplittable
    walkers[0].hasher.update(mac_bytes)
    return walkers[0], first_output, second_output


def _walker(key: DataKey, rule: EncryptionRule) -> Walker:
    from .cipher import Cipher

    return Walker(Cipher(key), rule, [])


# -- decryption -----------------------------------------------------------------------


def decrypt_yaml(
    data: bytes | bytearray, *, ignore_mac: bool, decryption_order: Sequence[str]
) -> tuple[bytes | None, Unwrapped | None]:
    """The plaintext of a large encrypted YAML file, decrypted in two processes, or
    None (use one process) and the data key if it was unwrapped on the way."""
    from . import api, datakey
    from . import metadata as metadata_mod
    from .stores import yaml_store

    split = _split_text(data)
    if split is None:
        return None, None
    text, cut = split
    meta_at = text.rfind("\nsops:") + 1
    if meta_at <= cut:
        return None, None
    try:
        block = yaml_store.load_text(text[meta_at:], want_metadata=True)
        if not block.has_metadata:
            return None, None
        meta = metadata_mod.from_tree(block.metadata)
    except Exception:  # noqa: BLE001 - one process will report it
        return None, None
    unwrapped_by: list[str] = []
    try:
        key = datakey.unwrap(meta, decryption_order, used=unwrapped_by)
    except Exception:
        api.parse(data, "yaml", encrypted=True)  # one process would report a broken file first
        raise
    unwrapped = Unwrapped(key, unwrapped_by, block.metadata)
    if not _may_fork():
        return None, unwrapped

    def run_half(half: str, walker: Walker, is_second: bool) -> tuple[bytes, list[str]]:
        yaml_file = yaml_store.load_text(half, want_metadata=True)
        keys = _top_keys(yaml_file)
        if yaml_file.has_metadata != is_second or (is_second and yaml_file.metadata != block.metadata):
            raise _NotSplittable
        walker.decrypt_document(yaml_file.documents[0])
        assert walker.outputs is not None
        return yaml_store.splice(yaml_file, walker.outputs, encrypting=False, metadata_text=None).encode(), keys

    try:
        done = _two_halves(text, cut, key, meta.rule, run_half)
        if done is None:
            return None, unwrapped
        walker, first_output, second_output = done
        if not ignore_mac:
            api.verify_mac(meta, key, walker.mac_hex())
    except Exception:  # noqa: BLE001 - one process decides, and reports any error as usual
        return None, unwrapped
    api.audit_unwrap(unwrapped_by, "yaml")
    return b"".join((first_output, second_output)), None


# -- encryption -----------------------------------------------------------------------


def encrypt_yaml(data: bytes | bytearray, options: EncryptOptions) -> bytes | None:
    """The encrypted form of a large YAML file, made in two processes; None: use one."""
    from . import api
    from .cipher import DataKey
    from .stores import yaml_store

    split = _split_text(data)
    if split is None:
        return None
    text, cut = split
    rule = options.rule
    walk_rule = rule if rule.kind else EncryptionRule("", "", rule.mac_only_encrypted)
    key = DataKey.generate()
    # the metadata block goes where the child's document ends: it marks the place
    marker = "#" + os.urandom(16).hex()

    def run_half(half: str, walker: Walker, is_second: bool) -> tuple[bytes, list[str]]:
        yaml_file = yaml_store.load_text(half, want_metadata=False)
        keys = _top_keys(yaml_file)
        walker.encrypt_document(yaml_file.documents[0])
        assert walker.outputs is not None
        spliced = yaml_store.splice(yaml_file, walker.outputs, encrypting=True,
                                    metadata_text=marker if is_second else None)
        return spliced.encode(), keys

    try:
        done = _two_halves(text, cut, key, walk_rule, run_half)
        if done is None:
            return None
        walker, first_output, second_output = done
        around_metadata = bytes(second_output).split(marker.encode())
        if len(around_metadata) != 2:
            return None
    except Exception:  # noqa: BLE001 - one process decides, and reports any error as usual
        return None
    meta = api.seal_metadata(key, walker.mac_hex(), rule, options)
    block = api.yaml_metadata_block(meta, options.yaml_indent).encode()
    return b"".join((first_output, around_metadata[0], block, around_metadata[1]))
