"""Walking a tree: which leaves are encrypted (the seven sops rules), their AAD, and the MAC.

The walk order is sops's: depth first, document order, documents in sequence;
null leaves are skipped entirely; comments are leaves at their container's path
but never part of the MAC.  One :class:`Walker` encrypts or decrypts a sequence of
documents and accumulates the MAC over them.
"""

from __future__ import annotations

from .codec import ENC_PREFIX, from_plaintext, is_enc, to_plaintext
from .digest import sha512
from .errors import ConflictingParameters, TreeDecryptError, TreeEncryptError
from .records import Record
from .tree import Comment

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable
    from typing import Any

    from .cipher import Cipher

RULE_FIELDS = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)

#: SHA-256("sops"), fed first to the MAC when ``mac_only_encrypted`` is set (matches sops)
MAC_ONLY_ENCRYPTED_INIT = bytes.fromhex("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69")


class _Unchanged:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


#: a walk output meaning "this leaf's text stays as it is"
UNCHANGED: Any = _Unchanged()


class EncryptionRule(Record):
    """At most one of the six sops rules, plus ``mac_only_encrypted``."""

    kind: str = "unencrypted_suffix"
    value: str = "_unencrypted"
    mac_only_encrypted: bool = False

    @classmethod
    def from_fields(cls, fields: dict[str, Any], *, default: bool = True) -> EncryptionRule:
        """Build from a mapping holding at most one of :data:`RULE_FIELDS`."""
        given = [name for name in RULE_FIELDS if fields.get(name)]
        if len(given) > 1:
            raise ConflictingParameters(
                "cannot use more than one of " + ", ".join(given)
            )
        mac_only = bool(fields.get("mac_only_encrypted"))
        if given:
            value = fields[given[0]]
            if not isinstance(value, str):
                raise ConflictingParameters(f"{given[0]} must be a string")
            return cls(given[0], value, mac_only)
        if default:
            return cls("unencrypted_suffix", "_unencrypted", mac_only)
        return cls("", "", mac_only)

    @property
    def is_comment_rule(self) -> bool:
        return self.kind.endswith("comment_regex")

    def key_matcher(self) -> Callable[[str], bool]:
        if self.kind.endswith("suffix"):
            suffix = self.value
            return lambda key: key.endswith(suffix)
        import re  # only the regex rules need it: the suffix rules keep re out of a run

        pattern = re.compile(self.value)
        return lambda key: pattern.search(key) is not None

    @property
    def encrypts_when_matched(self) -> bool:
        """True for the ``encrypted_*`` rules, False for ``unencrypted_*``."""
        return self.kind.startswith("encrypted")


class Walker:
    """Encrypts or decrypts documents under one rule and one cipher, computing the MAC.

    When ``outputs`` is a list, every visited leaf (comments included) appends its
    result in walk order: the new text or value, or :data:`UNCHANGED`.  Stores that
    splice text (YAML) consume that list.
    """

    def __init__(self, cipher: Cipher, rule: EncryptionRule, outputs: list[Any] | None = None) -> None:
        self.cipher = cipher
        self.rule = rule
        self.outputs = outputs
        self.mac_only = rule.mac_only_encrypted
        self.hasher = sha512()
        if self.mac_only:
            self.hasher.update(MAC_ONLY_ENCRYPTED_INIT)
        self._comment_rule = rule.is_comment_rule
        self._match: Callable[[str], bool] = (lambda key: False)
        self._comment_pattern: re.Pattern[str] | None = None
        if self._comment_rule:
            import re

            self._comment_pattern = re.compile(rule.value)
        elif rule.kind:
            self._match = rule.key_matcher()
        self._encrypt_when_matched = rule.encrypts_when_matched
        self._stack: list[list[str]] = []
        self._consume = False

    # -- the rules -------------------------------------------------------------------

    def _encrypted(self, matched: bool, is_comment: bool) -> bool:
        if not self._comment_rule:
            return matched if self._encrypt_when_matched else not matched
        assert self._comment_pattern is not None
        search = self._comment_pattern.search
        if self._encrypt_when_matched:
            # matches sops: a comment does not count for itself
            skip_last = is_comment
            for level_index, level in enumerate(self._stack):
                last = level_index == len(self._stack) - 1
                items = level[:-1] if (skip_last and last) else level
                if any(search(text) for text in items):
                    return True
            return False
        return not any(search(text) for level in self._stack for text in level)

    def _note_comment(self, text: str) -> None:
        if self._comment_rule and self._stack:
            self._stack[-1].append(text)

    def _entry_done(self) -> None:
        if self._comment_rule and self._stack:
            self._stack[-1].clear()

    def mac_hex(self) -> str:
        return self.hasher.hexdigest().upper()

    # -- encryption ------------------------------------------------------------------

    def encrypt_document(self, document: dict[Any, Any], *, consume: bool = False) -> dict[Any, Any]:
        """The encrypted copy of ``document``; ``consume`` as for :meth:`decrypt_document`."""
        self._stack = []
        self._consume = consume
        result: dict[Any, Any] = self._encrypt_node(document, "", False)
        return result

    def _encrypt_node(self, node: Any, prefix: str, matched: bool) -> Any:
        cls = node.__class__
        if cls is dict:
            out: dict[Any, Any] = {}
            comment_rule = self._comment_rule
            if comment_rule:
                self._stack.append([])
            match = self._match
            leaf = self._encrypt_leaf
            consume = self._consume
            for key, value in node.items():
                key_cls = key.__class__
                if key_cls is not str:
                    if key_cls is Comment:
                        out[self._encrypt_comment(key, prefix, matched)] = None
                        continue
                    where = prefix or "the top level"
                    raise TreeEncryptError(f"tree contains a non-string key ({type(key).__name__}) at '{where}'")
                value_cls = value.__class__
                if value_cls is dict or value_cls is list:
                    out[key] = self._encrypt_node(value, prefix + key + ":", matched or match(key))
                else:
                    out[key] = leaf(value, prefix + key + ":", matched or match(key))
                if consume:
                    node[key] = None
                if comment_rule:
                    self._entry_done()
            if comment_rule:
                self._stack.pop()
            return out
        if cls is list:
            items: list[Any] = []
            comment_rule = self._comment_rule
            if comment_rule:
                self._stack.append([])
            append = items.append
            leaf = self._encrypt_leaf
            consume = self._consume
            for index, item in enumerate(node):
                item_cls = item.__class__
                if item_cls is dict or item_cls is list:
                    append(self._encrypt_node(item, prefix, matched))
                elif item_cls is Comment:
                    append(self._encrypt_comment(item, prefix, matched))
                    continue
                else:
                    append(leaf(item, prefix, matched))
                if consume:
                    node[index] = None
                if comment_rule:
                    self._entry_done()
            if comment_rule:
                self._stack.pop()
            return items
        return self._encrypt_leaf(node, prefix, matched)

    def _encrypt_leaf(self, node: Any, prefix: str, matched: bool) -> Any:
        if node is None:
            return None
        if node.__class__ is str:  # the common case, inlined
            plaintext = node.encode("utf-8", "surrogateescape")
            type_tag = "str"
        else:
            plaintext, type_tag = to_plaintext(node)
        if self._comment_rule:
            encrypted = self._encrypted(matched, False)
        else:
            encrypted = matched if self._encrypt_when_matched else not matched
        if encrypted or not self.mac_only:
            self.hasher.update(plaintext)
        outputs = self.outputs
        if not encrypted:
            if outputs is not None:
                outputs.append(UNCHANGED)
            return node
        sealed = self.cipher.seal(plaintext, prefix or ":", type_tag)
        if outputs is not None:
            outputs.append(sealed if sealed else UNCHANGED)
        return sealed

    def _encrypt_comment(self, comment: Comment, prefix: str, matched: bool) -> Comment:
        if self._comment_rule:
            self._note_comment(comment.text)
            encrypted = self._encrypted(matched, True)
        else:
            encrypted = matched if self._encrypt_when_matched else not matched
        if not comment.text or not encrypted:
            if self.outputs is not None:
                self.outputs.append(UNCHANGED)
            return comment
        sealed = Comment(self.cipher.seal(comment.text.encode("utf-8", "surrogateescape"), prefix or ":", "comment"))
        if self._comment_pattern is not None and self._comment_pattern.search(sealed.text):
            raise TreeEncryptError("an encrypted comment would match the comment regex; choose a stricter regex")
        if self.outputs is not None:
            self.outputs.append(sealed)
        return sealed

    # -- decryption ------------------------------------------------------------------

    def decrypt_document(self, document: dict[Any, Any], *, consume: bool = False) -> dict[Any, Any]:
        """The decrypted copy of ``document``; ``consume`` replaces each of the
        document's values with None once decrypted, so that a large encrypted tree
        is freed while its plaintext is built."""
        self._stack = []
        self._consume = consume
        result: dict[Any, Any] = self._decrypt_node(document, "", False, ())
        return result

    def _decrypt_node(self, node: Any, prefix: str, matched: bool, ancestors: tuple[str, ...]) -> Any:
        cls = node.__class__
        if cls is dict:
            out: dict[Any, Any] = {}
            comment_rule = self._comment_rule
            if comment_rule:
                self._stack.append([])
            inner = ancestors + (prefix,)
            match = self._match
            leaf = self._decrypt_leaf
            consume = self._consume
            for key, value in node.items():
                if key.__class__ is Comment:
                    out[self._decrypt_comment(key, prefix, matched, ancestors)] = None
                    continue
                value_cls = value.__class__
                if value_cls is dict or value_cls is list:
                    out[key] = self._decrypt_node(value, prefix + key + ":", matched or match(key), inner)
                else:
                    out[key] = leaf(value, prefix + key + ":", matched or match(key))
                if consume:
                    node[key] = None  # a value's replacement keeps the dict's size: safe while iterating
                if comment_rule:
                    self._entry_done()
            if comment_rule:
                self._stack.pop()
            return out
        if cls is list:
            items: list[Any] = []
            comment_rule = self._comment_rule
            if comment_rule:
                self._stack.append([])
            append = items.append
            leaf = self._decrypt_leaf
            consume = self._consume
            for index, item in enumerate(node):
                item_cls = item.__class__
                if item_cls is dict or item_cls is list:
                    append(self._decrypt_node(item, prefix, matched, ancestors))
                elif item_cls is Comment:
                    append(self._decrypt_comment(item, prefix, matched, ancestors))
                    continue
                else:
                    append(leaf(item, prefix, matched))
                if consume:
                    node[index] = None
                if comment_rule:
                    self._entry_done()
            if comment_rule:
                self._stack.pop()
            return items
        return self._decrypt_leaf(node, prefix, matched)

    def _decrypt_leaf(self, node: Any, prefix: str, matched: bool) -> Any:
        if node is None:
            return None
        if self._comment_rule:
            encrypted = self._encrypted(matched, False)
        else:
            encrypted = matched if self._encrypt_when_matched else not matched
        if encrypted and node.__class__ is str and node.startswith(ENC_PREFIX):
            plaintext, type_tag = self.cipher.open(node, prefix or ":")
            if type_tag == "str":  # the common case, inlined
                value: Any = plaintext.decode("utf-8", "surrogateescape")
                self.hasher.update(plaintext)
            else:
                value = from_plaintext(plaintext, type_tag)
                if value.__class__ is not Comment:  # matches sops 3.11: a decrypted comment is not hashed
                    self.hasher.update(to_plaintext(value)[0])
            if self.outputs is not None:
                self.outputs.append(value)
            return value
        cls = node.__class__
        if not encrypted:
            if not self.mac_only:
                self.hasher.update(to_plaintext(node)[0])
            if self.outputs is not None:
                self.outputs.append(UNCHANGED)
            return node
        if cls is not str:
            raise TreeDecryptError(f"expected an encrypted value at '{prefix or ':'}' but found a {type(node).__name__}")
        if not node:
            if self.outputs is not None:
                self.outputs.append(UNCHANGED)
            return node
        raise TreeDecryptError(f"the value at '{prefix or ':'}' is not encrypted (expected ENC[AES256_GCM,...])")

    def _decrypt_comment(self, comment: Comment, prefix: str, matched: bool, ancestors: tuple[str, ...]) -> Comment:
        text = comment.text
        if self._comment_rule:
            self._note_comment(text)
            encrypted = self._encrypted(matched, True)
        else:
            encrypted = matched if self._encrypt_when_matched else not matched
        if not encrypted or not is_enc(text):
            if self.outputs is not None:
                self.outputs.append(UNCHANGED)
            return comment
        # matches sops: a comment that does not decrypt is kept as it stands.  Other
        # container paths are tried too (innermost first), since YAML layouts can
        # place a comment differently from where the writer filed it.
        try_open = self.cipher.try_open
        opened = try_open(text, prefix or ":")
        if opened is None or opened[1] != "comment":
            for ancestor in reversed(ancestors):
                opened = try_open(text, ancestor or ":")
                if opened is not None and opened[1] == "comment":
                    break
            else:
                opened = None
        if opened is not None:
            result = Comment(opened[0].decode("utf-8", "surrogateescape"))
            if self.outputs is not None:
                self.outputs.append(result)
            return result
        if self.outputs is not None:
            self.outputs.append(UNCHANGED)
        return comment
