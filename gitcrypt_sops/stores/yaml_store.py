"""YAML files: parsed from libyaml's events, changed by splicing into the original text.

Loading walks the C parser's events (each carries exact character offsets) and
builds the sops tree while recording, in walk order, where every leaf and comment
sits in the text.  Encrypting or decrypting then rewrites only those spans, so
indentation, quoting, blank lines and comment placement stay as the user wrote
them, and a git diff shows only real changes.  Comments are filed under the
container sops (go-yaml v3) files them under, which decides their AAD.

What cannot be spliced (a flow-style root such as ``{a: 1}``) is written with the
block emitter instead.
"""

from __future__ import annotations

from ..errors import AlreadyEncrypted, EmptyDocument, InputError
from ..tree import Comment, strip_comments
from ..walk import UNCHANGED
from . import apply_edits
from .yaml_emit import emit_document, emit_flow
from .yaml_scalars import Uint64Value, double_quoted, is_plain_word, render_scalar, resolve_plain, resolve_tagged

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# span kinds
_SCALAR = 0
_COMMENT = 1
_ALIAS = 2


class _Frame:
    """One open mapping or sequence while the events are read."""

    __slots__ = (
        "capture",
        "container",
        "entry_col",
        "expecting_key",
        "flow",
        "is_map",
        "key",
        "pending",
        "pending_comments",
    )

    def __init__(self, is_map: bool, container: Any, entry_col: int, flow: bool, capture: bool = False) -> None:
        self.is_map = is_map
        self.container = container
        self.entry_col = entry_col
        self.flow = flow
        #: inside the ``sops`` block: no spans, no comments
        self.capture = capture
        self.key: Any = None
        self.expecting_key = True
        #: the last entry, held back until a trailing comment on its line is seen: key, value, span, line
        self.pending: tuple[Any, Any, tuple[Any, ...] | None, int] | None = None
        #: comments that go into the next collection opened in this one
        self.pending_comments: list[tuple[Comment, tuple[Any, ...]]] = []


class YamlFile:
    """A parsed YAML file: its documents as trees plus what splicing needs."""

    __slots__ = (
        "doc_ends",
        "documents",
        "has_metadata",
        "header_comments",
        "meta_ranges",
        "metadata",
        "spans",
        "spliceable",
        "text",
    )

    def __init__(self, text: str, documents: list[dict[Any, Any]], spans: list[tuple[Any, ...]],
                 doc_ends: list[int], meta_ranges: list[tuple[int, int]], metadata: Any = None,
                 has_metadata: bool = False, spliceable: bool = True,
                 header_comments: dict[int, tuple[int, int]] | None = None) -> None:
        self.text = text
        self.documents = documents
        #: every leaf and comment, in walk order: what splicing replaces
        self.spans = spans
        #: where each document's ``sops`` block goes (encryption)
        self.doc_ends = doc_ends
        #: text ranges of ``sops`` blocks (decryption)
        self.meta_ranges = meta_ranges
        #: the first document's ``sops`` mapping, if any
        self.metadata = metadata
        self.has_metadata = has_metadata
        self.spliceable = spliceable
        #: block scalar start -> the comment on its header line
        self.header_comments = header_comments if header_comments is not None else {}


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


class _Loader:
    def __init__(self, text: str, want_metadata: bool) -> None:
        self.text = text
        self.want_metadata = want_metadata
        self.documents: list[dict[Any, Any]] = []
        self.spans: list[tuple[Any, ...]] = []
        self.doc_ends: list[int] = []
        self.meta_ranges: list[tuple[int, int]] = []
        self.metadata: Any = None
        self.has_metadata = False
        self.spliceable = True
        self.frames: list[_Frame] = []
        self.anchors: dict[str, Any] = {}
        self.closing: list[int] = []  # positions of block ends not applied yet
        self.prev_line = -1
        self.root_pending: list[tuple[Comment, tuple[Any, ...]]] = []
        self.meta_start = -1
        self.meta_depth = -1
        #: the flow collection that ended last, and the line of its closing bracket
        self.last_flow: tuple[_Frame, int] | None = None
        self.first_in_gap = True
        self.blank_after = False
        #: block scalar start -> (start, end) of a comment on its header line
        self.header_comments: dict[int, tuple[int, int]] = {}

    # -- comments -------------------------------------------------------------------

    def _comments_in(self, start: int, end: int, next_event: Any) -> None:
        text = self.text
        find = text.find
        self.first_in_gap = True
        index = find("#", start, end)
        while index != -1:
            if index > 0 and text[index - 1] not in " \t\n\r\ufeff":
                index = find("#", index + 1, end)
                continue
            stop = find("\n", index, end)
            if stop == -1:
                stop = end
            stop_text = stop
            if stop_text > index and text[stop_text - 1] == "\r":
                stop_text -= 1
            line_start = _line_start(text, index)
            trailing = text[line_start:index].strip() not in ("", "---")
            following_end = find("\n", stop + 1)
            following = text[stop + 1 : following_end if following_end != -1 else len(text)]
            self.blank_after = stop < end and not following.strip()
            self._place_comment(index, stop_text, index - line_start, trailing, next_event)
            self.first_in_gap = False
            index = find("#", stop, end)

    def _place_comment(self, start: int, end: int, column: int, trailing: bool, next_event: Any) -> None:
        frames = self.frames
        comment = Comment(self.text[start + 1 : end])
        span = (_COMMENT, start, end)
        if frames and frames[-1].capture:  # a capturing frame's descendants capture too
            return
        if frames and next_event.start_mark.index <= start and next_event.__class__.__name__ in (
            "MappingStartEvent", "SequenceStartEvent"
        ):
            self._insert(frames[-1], comment, span)
            return
        line = self.prev_line if trailing else -1  # a trailing comment shares the last token's line
        if trailing and self.last_flow is not None and self.last_flow[1] == line:
            self._insert(self.last_flow[0], comment, span)
            return
        if trailing and frames:
            frame = frames[-1]
            if frame.pending is not None and frame.pending[3] == line:
                self._insert(frame, comment, span, before_pending=True)
            else:
                self._insert(frame, comment, span)
            return
        kind = next_event.__class__.__name__
        if kind in ("MappingStartEvent", "SequenceStartEvent") and not next_event.flow_style:
            # matches yaml.v3: a comment between a key and its block value is the value's head comment
            if frames:
                frames[-1].pending_comments.append((comment, span))
            else:
                self.root_pending.append((comment, span))
            return
        top = len(frames)
        closing = len(self.closing)
        for index in range(top - 1, top - 1 - closing, -1):
            if index < 0:
                break
            frame = frames[index]
            if index == 0 or self._takes_foot_comment(frame, index, column, innermost=index == top - 1):
                self._insert(frame, comment, span)
                return
        if top - closing > 0:
            self._insert(frames[top - closing - 1], comment, span)
        else:
            self.root_pending.append((comment, span))

    def _header_comment(self, event: Any) -> None:
        """A comment on a block scalar's header line (``key: | # note``)."""
        text = self.text
        start = event.start_mark.index
        line_end = text.find("\n", start, event.end_mark.index)
        if line_end == -1:
            return
        index = text.find(" #", start, line_end)
        if index == -1 or (self.frames and self.frames[-1].capture):
            return
        end = line_end - 1 if text[line_end - 1] == "\r" else line_end
        frame = self.frames[-1]
        span = (_COMMENT, index + 1, end)
        self.header_comments[event.start_mark.index] = (index + 1, end)
        self._insert(frame, Comment(text[index + 2 : end]), span, before_pending=frame.pending is not None)

    def _takes_foot_comment(self, frame: _Frame, index: int, column: int, innermost: bool) -> bool:
        """Whether a comment after the end of ``frame``'s block belongs to it (yaml.v3's foot comments).

        Inside the block's own indentation it does (a sequence further out than the
        innermost block needs more than its dash column).  The innermost block that
        ended, when it is a mapping, also takes the first comment after it when that
        is indented past its owner's column, or at its owner's column when the
        parent mapping (not the document's root) ends too.  Checked
        against sops 3.11 on the cases in tests/data/yaml_comment_cases.json.
        """
        if column > frame.entry_col or (column == frame.entry_col and (frame.is_map or innermost)):
            return True
        if not (innermost and frame.is_map and index > 0 and self.first_in_gap and not self.blank_after):
            return False
        parent = self.frames[index - 1]
        if column > parent.entry_col:
            return True
        parent_closing = index - 1 >= len(self.frames) - len(self.closing)
        return parent_closing and parent.is_map and index - 1 > 0 and column == parent.entry_col

    # -- building the tree ----------------------------------------------------------

    def _flush(self, frame: _Frame) -> None:
        pending = frame.pending
        if pending is None:
            return
        frame.pending = None
        key, value, span, _ = pending
        if frame.is_map:
            if key in frame.container:
                raise InputError(f"duplicate key '{key}' in YAML mapping")
            frame.container[key] = value
        else:
            frame.container.append(value)
        if span is not None:
            self.spans.append(span)

    def _insert(self, frame: _Frame, comment: Comment, span: tuple[Any, ...], before_pending: bool = False) -> None:
        for deeper in reversed(self.frames):  # leaves pending deeper come first in walk order
            if deeper is frame:
                break
            self._flush(deeper)
        if not before_pending:
            self._flush(frame)
        if frame.is_map:
            frame.container[comment] = None
        else:
            frame.container.append(comment)
        self.spans.append(span)
        if before_pending:
            self._flush(frame)

    def _add_value(self, value: Any, span: tuple[Any, ...] | None, line: int) -> None:
        frame = self.frames[-1]
        self._flush(frame)
        if frame.is_map:
            frame.pending = (frame.key, value, span, line)
            frame.expecting_key = True
        else:
            frame.pending = (None, value, span, line)

    def _open(self, event: Any, is_map: bool) -> None:
        container: Any = {} if is_map else []
        flow = bool(event.flow_style)
        if flow:
            entry_col = event.start_mark.column
        elif is_map:
            entry_col = event.end_mark.column
        else:
            # the first "-": libyaml's start event ends at the dash, or right after it
            end = event.end_mark.index
            after_dash = end > event.start_mark.index and self.text[end - 1] == "-"
            entry_col = event.end_mark.column - 1 if after_dash else event.end_mark.column
        parent = self.frames[-1] if self.frames else None
        capture = bool(parent and (parent.capture or (self.meta_depth == 1 and len(self.frames) == 1)))
        frame = _Frame(is_map, container, entry_col, flow, capture)
        if parent is None:
            if not is_map:
                raise InputError("a YAML document must be a mapping at the top level (found a sequence)")
            if flow:
                self.spliceable = False
            self.documents.append(container)
            for comment, span in self.root_pending:
                self._insert(frame, comment, span)
            self.root_pending = []
        else:
            if parent.is_map and parent.expecting_key:
                raise InputError("YAML mapping keys must be scalars")
            self._flush(parent)
            if parent.is_map:
                if not capture or self.meta_depth != 1 or len(self.frames) != 1:
                    parent.container[parent.key] = container
                parent.expecting_key = True
            else:
                parent.container.append(container)
            for comment, span in parent.pending_comments:
                self._insert(frame, comment, span)
            parent.pending_comments = []
        if event.anchor:
            self.anchors[event.anchor] = container
        self.frames.append(frame)

    def _close(self, position: int) -> None:
        frame = self.frames.pop()
        self._flush(frame)
        for comment, span in frame.pending_comments:
            self._insert(frame, comment, span)
        frame.pending_comments = []
        if frame.capture and len(self.frames) == 1 and self.meta_depth == 1:
            self._metadata_done(frame.container)
        if not self.frames:
            self.doc_ends.append(position)

    def _metadata_done(self, value: Any) -> None:
        if not self.has_metadata:
            self.metadata = value
            self.has_metadata = True
        self.meta_depth = 2  # the range ends at the next event

    # -- the event loop -------------------------------------------------------------

    def run(self) -> None:
        from .. import pyyaml

        yaml = pyyaml.load()
        text = self.text
        find = text.find
        closing = self.closing
        scalar_event = yaml.ScalarEvent
        block_ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
        collection_starts = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
        document_end = yaml.DocumentEndEvent
        scalar = self._scalar
        last_pos = 0
        prev_line = -1
        # the first "#" at or after some position <= last_pos (-1: none left), so that
        # the gap before an event is searched only when it may hold a comment
        next_hash = find("#")
        try:
            get_event = yaml.CSafeLoader(text).get_event  # libyaml events carry exact marks
            while True:
                event = get_event()
                if event is None:  # after the stream's end
                    break
                cls = event.__class__
                start = event.start_mark.index
                end_mark = event.end_mark
                end = end_mark.index
                if start == end and (cls in block_ends or cls is document_end):
                    if cls is not document_end:
                        closing.append(start)
                    continue
                if next_hash != -1 and next_hash < start:
                    if next_hash < last_pos:
                        next_hash = find("#", last_pos)
                    if next_hash != -1 and next_hash < start:
                        self.prev_line = prev_line
                        self._comments_in(last_pos, start, event)
                if closing:
                    for position in closing:
                        self._close(position)
                    closing.clear()
                if self.meta_depth == 2:
                    self.meta_ranges.append((self.meta_start, start))
                    self.meta_depth = -1
                if cls is scalar_event:  # the common case first
                    self.last_flow = None
                    scalar(event)
                    if event.style in ("|", ">"):
                        self._header_comment(event)
                else:
                    if cls not in block_ends and cls is not document_end:
                        self.last_flow = None
                    self._event(cls.__name__, event)
                    if end > start and cls in collection_starts:
                        # comments after an anchor or tag belong to the new collection
                        self.prev_line = prev_line
                        self._comments_in(start, end, event)
                if end > last_pos:
                    last_pos = end
                prev_line = end_mark.line
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise InputError(f"invalid YAML{where}: {error.problem or 'parse error'}") from None
        except yaml.YAMLError:
            raise InputError("invalid YAML") from None
        except RecursionError:
            raise InputError("YAML nesting is too deep") from None

    def _event(self, kind: str, event: Any) -> None:
        frames = self.frames
        if kind == "ScalarEvent":
            self._scalar(event)
        elif kind == "MappingStartEvent":
            self._open(event, True)
        elif kind == "SequenceStartEvent":
            self._open(event, False)
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            closed = self.frames[-1]
            self._close(event.end_mark.index)
            self.last_flow = (closed, event.end_mark.line)
        elif kind == "AliasEvent":
            self._alias(event)
        elif kind == "DocumentEndEvent":
            pass
        elif kind == "DocumentStartEvent":
            if frames:
                raise InputError("invalid YAML document structure")
            self.anchors = {}
        # stream start and end: nothing to do

    def _scalar(self, event: Any) -> None:
        style = event.style
        tag = event.tag
        if tag and tag != "!":
            try:
                value = resolve_tagged(event.value, tag, not style)
            except ValueError as error:
                mark = event.start_mark
                raise InputError(f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {error}") from None
        elif style or tag == "!":
            value = event.value
        else:
            value = resolve_plain(event.value)
        frames = self.frames
        if not frames:
            if value is None:  # an empty document: metadata only
                self.documents.append({})
                self.doc_ends.append(event.end_mark.index)
                return
            raise InputError("a YAML document must be a mapping at the top level (found a scalar)")
        frame = frames[-1]
        if frame.pending is not None:  # the previous entry is complete
            self._flush(frame)
        if frame.is_map and frame.expecting_key:
            if value.__class__ is not dict:
                try:
                    duplicate = value in frame.container
                except TypeError:
                    raise InputError("unsupported YAML mapping key") from None
                if duplicate:
                    raise InputError(f"duplicate key '{value}' in YAML mapping")
            frame.key = value
            frame.expecting_key = False
            if value == "sops" and len(frames) == 1 and not frame.capture:
                if not self.want_metadata:
                    raise AlreadyEncrypted("the file is already encrypted: it has a top-level 'sops' key")
                self.meta_start = _line_start(self.text, event.start_mark.index)
                self.meta_depth = 1
            return
        anchor = event.anchor
        if anchor:
            self.anchors[anchor] = value
        if value.__class__ is Uint64Value:
            from ..errors import TreeEncryptError

            raise TreeEncryptError("unsupported integer between 2^63 and 2^64-1 (uint64); quote it as a string")
        start_mark = event.start_mark
        if len(frames) == 1 and self.meta_depth == 1:  # a scalar ``sops`` value
            self._metadata_done(value)
            frame.expecting_key = True
            return
        if frame.capture or value is None:
            span = None
        else:
            span = (_SCALAR, start_mark.index, event.end_mark.index, frame.flow, frame.entry_col, style,
                    f"&{anchor} " if anchor else "")
        # the entry is held back until a trailing comment on its line is seen
        if frame.is_map:
            frame.pending = (frame.key, value, span, start_mark.line)
            frame.expecting_key = True
        else:
            frame.pending = (None, value, span, start_mark.line)

    def _alias(self, event: Any) -> None:
        target = self.anchors.get(event.anchor)
        if target is None and event.anchor not in self.anchors:
            raise InputError(f"YAML alias '*{event.anchor}' has no anchor")
        frame = self.frames[-1] if self.frames else None
        if frame is None:
            raise InputError("a YAML document must be a mapping at the top level")
        if frame.is_map and frame.expecting_key:
            raise InputError("YAML aliases as mapping keys are not supported")
        value = strip_comments(target)
        count = _count_leaves(value)
        span = None if frame.capture else (_ALIAS, event.start_mark.index, event.end_mark.index, frame.flow, value, count)
        self._add_value(value, span, event.start_mark.line)


def _count_leaves(value: Any) -> int:
    cls = value.__class__
    if cls is dict:
        return sum(_count_leaves(v) for v in value.values())
    if cls is list:
        return sum(_count_leaves(v) for v in value)
    return 0 if value is None else 1


def load(data: bytes, *, want_metadata: bool) -> YamlFile:
    """Parse a YAML file.  ``want_metadata`` False refuses a top-level ``sops`` key."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the YAML input is not valid UTF-8") from None
    return load_text(text.removeprefix("\ufeff"), want_metadata=want_metadata)


def load_text(text: str, *, want_metadata: bool) -> YamlFile:
    """:func:`load` for text already decoded (and without a byte-order mark)."""
    if not text:
        raise EmptyDocument("file cannot be completely empty")
    if not text.strip():
        raise InputError("the YAML input holds no document (only white space)")
    loader = _Loader(text, want_metadata)
    loader.run()
    if not loader.documents:
        raise InputError("the YAML input holds no document (only comments?)")
    if loader.meta_depth == 2:
        loader.meta_ranges.append((loader.meta_start, len(text)))
    return YamlFile(
        text, loader.documents, loader.spans, loader.doc_ends, loader.meta_ranges,
        loader.metadata, loader.has_metadata, loader.spliceable, loader.header_comments,
    )


# -- writing ------------------------------------------------------------------------


def _render_alias(value: Any, outputs: list[Any], position: int, encrypting: bool) -> tuple[str, int]:
    """Render an expanded alias in flow style, taking its leaves' outputs in walk order."""
    counter = [position]

    def substitute(node: Any) -> Any:
        cls = node.__class__
        if cls is dict:
            return {k: substitute(v) for k, v in node.items()}
        if cls is list:
            return [substitute(v) for v in node]
        if node is None:
            return None
        out = outputs[counter[0]]
        counter[0] += 1
        return node if out is UNCHANGED else out

    rendered = emit_flow(substitute(value))
    return rendered, counter[0]


def _block_trailer(original: str) -> str:
    """The line breaks a block scalar's span ends with, to keep the blank lines after it.

    A keep-chomped block (``|+``) owns its trailing blank lines: they are part of
    the value, so only the final line break stays in the text.
    """
    header = original[: original.find("\n")] if "\n" in original else original
    if "+" in header.split("#", 1)[0]:
        return "\n"
    stripped = original.rstrip(" \n\r")
    return "\n" * original[len(stripped):].count("\n")


def splice(yaml_file: YamlFile, outputs: list[Any], *, encrypting: bool, metadata_text: str | None) -> str:
    """The file's text with every changed leaf and comment replaced.

    With ``metadata_text`` the ``sops`` block is appended to every document
    (encryption); without it, existing ``sops`` blocks are removed (decryption).
    """
    text = yaml_file.text
    edits: list[tuple[int, int, str]] = []
    comment_edits: dict[int, tuple[int, str]] = {}
    position = 0
    for span in yaml_file.spans:
        kind = span[0]
        if kind == _ALIAS:
            _, start, end, flow, value, count = span
            rendered, position = _render_alias(value, outputs, position, encrypting)
            edits.append((start, end, rendered))
            continue
        out = outputs[position]
        position += 1
        if out is UNCHANGED:
            continue
        if kind == _COMMENT:
            comment_edits[span[1]] = (span[2], "#" + out.text)
            continue
        _, start, end, flow, entry_col, style, prefix = span
        if encrypting:
            replacement = double_quoted(out) if flow else out
            if style in ("|", ">"):
                header = yaml_file.header_comments.get(start)
                if header is not None:
                    edited = comment_edits.pop(header[0], None)
                    replacement += " " + (edited[1] if edited else text[header[0] : header[1]])
                replacement += _block_trailer(text[start:end])
            edits.append((start, end, prefix + replacement))
            continue
        if out.__class__ is Comment:
            dash = text.rfind("-", 0, start)
            if flow or dash == -1 or text[dash + 1 : start].strip():
                continue
            edits.append((dash, end, "#" + out.text))
            continue
        if out.__class__ is str and is_plain_word(out):  # most values: render_scalar's first answer
            rendered = out
        else:
            rendered = render_scalar(out, flow=flow, indent=" " * (entry_col + 2))
            if rendered.startswith("|"):
                line_end = text.find("\n", end)
                if text[end : len(text) if line_end == -1 else line_end].strip():
                    rendered = double_quoted(out)  # a comment follows on this line
                elif style not in ("|", ">") and end < len(text) and text[end] != "\n":
                    rendered += "\n"
        if style in ("|", ">"):
            rendered += _block_trailer(text[start:end])
        edits.append((start, end, prefix + rendered))
    edits.extend((start, end, replacement) for start, (end, replacement) in comment_edits.items())
    if metadata_text is not None:
        for doc_end in yaml_file.doc_ends:
            before = text[:doc_end]
            lead = "" if before.endswith("\n") or not before else "\n"
            edits.append((doc_end, doc_end, lead + metadata_text))
    else:
        for start, end in yaml_file.meta_ranges:
            edits.append((start, end, ""))
    result = apply_edits(text, edits)
    if metadata_text is None and not result.strip():
        return "{}\n"
    return result


def emit(documents: list[dict[Any, Any]], metadata: dict[str, Any] | None = None, indent: int = 4) -> str:
    """Write whole documents with the block emitter (``sops`` block appended to each)."""
    parts = []
    for document in documents:
        tree = dict(document)
        if metadata is not None:
            tree["sops"] = metadata
        parts.append(emit_document(tree, indent))
    return "---\n".join(parts)
