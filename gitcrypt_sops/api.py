"""The pipeline: the only code that encrypts or decrypts a document.

The CLI, the git drivers and the Python API are thin adapters over the functions
here.  Bytes come in with a format name; a store turns them into trees; the walker
encrypts or decrypts the leaves and computes the MAC; the data key is wrapped or
unwrapped through the providers; a store writes the result.
"""

from __future__ import annotations

from . import datakey
from . import metadata as metadata_mod
from .cipher import Cipher, DataKey, StashKey
from .dates import datetime, timezone
from .digest import constant_time_equal
from .errors import (
    EmptyDocument,
    InputError,
    MacMismatch,
    MetadataNotFound,
    SopsError,
    TreeDecryptError,
)
from .metadata import Metadata
from .providers.base import Recipient
from .tree import Comment, strip_comments
from .walk import EncryptionRule, Walker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class EncryptOptions:
    """Everything that decides how a plaintext document is encrypted."""

    __slots__ = ("key_groups", "rule", "shamir_threshold", "yaml_indent", "json_indent")

    def __init__(self, key_groups: Sequence[Sequence[Recipient]], rule: EncryptionRule | None = None,
                 shamir_threshold: int = 0, yaml_indent: int = 4, json_indent: int | None = None) -> None:
        self.key_groups = key_groups
        self.rule = rule if rule is not None else EncryptionRule()
        self.shamir_threshold = shamir_threshold
        self.yaml_indent = yaml_indent
        self.json_indent = json_indent


class Parsed:
    """A document read by a store, before or after decryption."""

    __slots__ = ("fmt", "documents", "metadata_tree", "has_metadata", "yaml_file", "toml_file")

    def __init__(self, fmt: str, documents: list[dict[Any, Any]], metadata_tree: Any = None,
                 has_metadata: bool = False, yaml_file: Any = None, toml_file: Any = None) -> None:
        self.fmt = fmt
        self.documents = documents
        self.metadata_tree = metadata_tree
        self.has_metadata = has_metadata
        #: stores.yaml_store.YamlFile when the input was YAML (used for splicing)
        self.yaml_file = yaml_file
        #: stores.toml_store.TomlFile when the input was TOML (used for splicing)
        self.toml_file = toml_file


class Decrypted:
    """The result of decrypting: documents (comments kept), metadata and the data key."""

    __slots__ = ("fmt", "documents", "metadata", "data_key", "stash", "outputs", "source")

    def __init__(self, fmt: str, documents: list[dict[Any, Any]], metadata: Metadata, data_key: DataKey,
                 stash: dict[StashKey, bytes], outputs: list[Any] | None = None, source: Parsed | None = None) -> None:
        self.fmt = fmt
        self.documents = documents
        self.metadata = metadata
        self.data_key = data_key
        self.stash = stash
        self.outputs = outputs
        self.source = source

    def data(self) -> Any:
        """Plain Python data: one document's dict, or a list for multi-document YAML."""
        plain = [strip_comments(document) for document in self.documents]
        return plain[0] if len(plain) == 1 else plain


# -- stores ---------------------------------------------------------------------------


def parse(data: bytes | bytearray, fmt: str, *, encrypted: bool) -> Parsed:
    """Read ``data`` in format ``fmt``; ``encrypted`` says whether metadata is expected.

    A ``bytearray`` is taken over: it is emptied as soon as its text is decoded,
    so that a large file is not held twice while its tree is built.
    """
    if fmt == "json":
        from .stores import json_store

        if not data or data.isspace():  # not strip(): that copies the whole input
            raise InputError("JSON document is empty")
        tree = json_store.load(data)
        return _with_metadata("json", tree, encrypted)
    if isinstance(data, bytearray):
        handed_over = data
        data = bytes(handed_over)
        handed_over.clear()
    if fmt == "yaml":
        from .stores import yaml_store

        yaml_file = yaml_store.load(data, want_metadata=encrypted)
        return Parsed("yaml", yaml_file.documents, yaml_file.metadata, yaml_file.has_metadata, yaml_file)
    if fmt == "binary":
        if encrypted:
            from .stores import json_store

            tree = json_store.load(data)
            parsed = _with_metadata("binary", tree, encrypted)
            if "data" not in tree:
                raise InputError("no binary data found in tree")
            return parsed
        return Parsed("binary", [{"data": data.decode("utf-8", "surrogateescape")}])
    if fmt == "dotenv":
        from .stores import dotenv_store

        return _with_metadata("dotenv", dotenv_store.load(data), encrypted, flattened=True)
    if fmt == "ini":
        from .stores import ini_store

        return _with_metadata("ini", ini_store.load(data), encrypted, flattened=True)
    if fmt == "toml":
        from .stores import toml_store

        toml_file = toml_store.load(data, want_metadata=encrypted)
        return Parsed("toml", toml_file.documents, toml_file.metadata, toml_file.has_metadata, toml_file=toml_file)
    raise InputError(f"unknown format '{fmt}'")


def _with_metadata(fmt: str, tree: dict[Any, Any], encrypted: bool, flattened: bool = False) -> Parsed:
    if flattened:
        from .stores import flatten

        meta, has = flatten.extract_metadata(fmt, tree)
    else:
        has = "sops" in tree
        meta = tree.pop("sops", None) if has else None
    if has and not encrypted:
        from .errors import AlreadyEncrypted

        raise AlreadyEncrypted("the file is already encrypted: it has sops metadata")
    return Parsed(fmt, [tree], meta, has)


def _emit_plain(documents: list[dict[Any, Any]], fmt: str, yaml_indent: int, json_indent: int | None) -> bytes:
    """Write decrypted (or any plaintext) documents in ``fmt`` without metadata."""
    if fmt == "yaml":
        from .stores import yaml_store

        return yaml_store.emit(documents, None, yaml_indent).encode()
    if fmt == "json":
        from .stores import json_store

        if len(documents) > 1:
            return b"".join(json_store.dump(document, json_indent) for document in documents)
        return json_store.dump(documents[0], json_indent)
    if fmt == "binary":
        document = documents[0]
        value = document.get("data") if document.__class__ is dict else None
        if value is None:
            raise InputError("no binary data found in tree")
        if isinstance(value, bytes):
            return value
        return str(value).encode("utf-8", "surrogateescape")
    if fmt == "dotenv":
        from .stores import dotenv_store

        return dotenv_store.dump(documents[0])
    if fmt == "ini":
        from .stores import ini_store

        return ini_store.dump(documents[0])
    if fmt == "toml":
        from .stores import toml_store

        return toml_store.dump(documents)
    raise InputError(f"unknown format '{fmt}'")


def _emit_encrypted(
    documents: list[dict[Any, Any]], meta: Metadata, fmt: str, options: EncryptOptions, source: Parsed | None,
    outputs: list[Any] | None,
) -> bytes:
    if fmt == "yaml":
        from .stores import yaml_store

        if source is not None and source.yaml_file is not None and source.yaml_file.spliceable and outputs is not None:
            block = yaml_metadata_block(meta, options.yaml_indent)
            return yaml_store.splice(source.yaml_file, outputs, encrypting=True, metadata_text=block).encode()
        return yaml_store.emit(documents, metadata_mod.to_tree(meta, empty_list=[]), options.yaml_indent).encode()
    if fmt in ("json", "binary"):
        from .stores import json_store

        tree = dict(documents[0])
        tree["sops"] = metadata_mod.to_tree(meta, empty_list=None)
        return json_store.dump(tree, options.json_indent)
    if fmt in ("dotenv", "ini"):
        from .stores import flatten

        tree = flatten.attach_metadata(fmt, dict(documents[0]), metadata_mod.to_tree(meta, empty_list=None))
        return _emit_plain([tree], fmt, 0, None)
    if fmt == "toml":
        from .stores import toml_store

        toml_file = source.toml_file if source is not None and source.fmt == "toml" else None
        return toml_store.emit_encrypted(documents, metadata_mod.to_tree(meta, empty_list=[]), toml_file, outputs)
    raise InputError(f"unknown format '{fmt}'")


def yaml_metadata_block(meta: Metadata, indent: int) -> str:
    """The ``sops:`` block appended to an encrypted YAML document."""
    from .stores.yaml_emit import emit_document

    return emit_document({"sops": metadata_mod.to_tree(meta, empty_list=[])}, indent)


# -- encryption -----------------------------------------------------------------------


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def encrypt_parsed(
    parsed: Parsed,
    options: EncryptOptions,
    output_fmt: str | None = None,
    *,
    data_key: DataKey | None = None,
    stash: dict[StashKey, bytes] | None = None,
    wrapped: tuple[list[list[metadata_mod.Entry]], int] | None = None,
    metadata_extra: dict[str, Any] | None = None,
    consume: bool = False,
) -> bytes:
    """Encrypt parsed plaintext documents and write them in ``output_fmt``.

    ``data_key``, ``stash`` and ``wrapped`` let callers keep an existing file's data
    key, its unchanged values' ciphertext and its wrapped keys (edit, set, update);
    ``metadata_extra`` carries an existing file's unknown ``sops`` fields over.
    ``consume`` empties ``parsed``'s documents while encrypting them.
    """
    fmt = output_fmt or parsed.fmt
    rule = options.rule
    if parsed.fmt == "binary" or fmt == "binary":
        rule = EncryptionRule("", "", False)  # matches sops: the binary store has no rules
    key = data_key or DataKey.generate()
    cipher = Cipher(key, stash)
    splice = (fmt == "yaml" and parsed.yaml_file is not None) or (fmt == "toml" and parsed.toml_file is not None)
    outputs: list[Any] | None = [] if splice else None
    walker = Walker(cipher, rule if rule.kind else EncryptionRule("", "", rule.mac_only_encrypted), outputs)
    documents = [walker.encrypt_document(document, consume=consume) for document in parsed.documents]
    if consume:
        parsed.documents.clear()
    meta = seal_metadata(key, walker.mac_hex(), rule, options, binary=parsed.fmt == "binary" or fmt == "binary",
                         wrapped=wrapped, metadata_extra=metadata_extra)
    return _emit_encrypted(documents, meta, fmt, options, parsed, outputs)


def seal_metadata(
    key: DataKey, mac_hex: str, rule: EncryptionRule, options: EncryptOptions, *, binary: bool = False,
    wrapped: tuple[list[list[metadata_mod.Entry]], int] | None = None, metadata_extra: dict[str, Any] | None = None,
) -> Metadata:
    """The metadata of a freshly encrypted file: its MAC sealed, its data key wrapped for every recipient."""
    lastmodified = now_rfc3339()
    mac = Cipher(key).seal(mac_hex.encode(), lastmodified, "str")
    if wrapped is None:
        wrapped = datakey.wrap(key, options.key_groups, options.shamir_threshold)
    groups, threshold = wrapped
    return Metadata(groups, lastmodified, mac, rule, shamir_threshold=threshold, write_rule=not binary,
                    extra=metadata_extra)


def encrypt_bytes(data: bytes | bytearray, fmt: str, options: EncryptOptions, output_fmt: str | None = None) -> bytes:
    """Encrypt a plaintext file's bytes (a ``bytearray`` is taken over, as by :func:`parse`)."""
    if fmt == "yaml" and output_fmt in (None, "yaml") and _in_two_processes(len(data)):
        from . import halves

        encrypted = halves.encrypt_yaml(data, options)
        if encrypted is not None:
            return encrypted
    parsed = parse(data, fmt, encrypted=False)
    if output_fmt and output_fmt != fmt:
        parsed.yaml_file = None
    return encrypt_parsed(parsed, options, output_fmt, consume=_consumable(parsed))


#: YAML files this big run in two processes (see halves); below it the second
#: core saves little (measured: 300 KB 20-25% faster, 150 KB 0-15%)
TWO_PROCESS_MIN_SIZE = 256 * 1024


def _in_two_processes(size: int) -> bool:
    """Whether a file of ``size`` bytes is worth two processes here (halves is
    imported only then: small runs never load it)."""
    if size < TWO_PROCESS_MIN_SIZE:
        return False
    from . import halves

    return halves.may_split()


def _consumable(parsed: Parsed) -> bool:
    """Whether a walk may empty ``parsed`` as it goes: not YAML, where an alias makes
    two places share one subtree (the second visit must still find it)."""
    return parsed.fmt != "yaml"


def encrypt_data(data: Any, fmt: str, options: EncryptOptions) -> bytes:
    """Encrypt Python data (a dict, or a list of dicts for multi-document YAML)."""
    documents = data if isinstance(data, list) else [data]
    if not documents or not all(isinstance(document, dict) for document in documents):
        raise InputError("data to encrypt must be a mapping (or a list of mappings for YAML documents)")
    if len(documents) > 1 and fmt != "yaml":
        raise InputError(f"only YAML holds several documents, not {fmt}")
    parsed = Parsed(fmt, [dict(document) for document in documents])
    if any("sops" in document for document in documents):
        from .errors import AlreadyEncrypted

        raise AlreadyEncrypted("the data already has a top-level 'sops' key")
    return encrypt_parsed(parsed, options)


# -- decryption -----------------------------------------------------------------------


def read_metadata(parsed: Parsed) -> Metadata:
    if not parsed.has_metadata:
        raise MetadataNotFound("sops metadata not found: the file is not encrypted (or has the wrong --input-type)")
    meta = metadata_mod.from_tree(parsed.metadata_tree)
    if parsed.fmt == "binary":
        meta.write_rule = False
    return meta


def decrypt_parsed(
    parsed: Parsed,
    *,
    ignore_mac: bool = False,
    decryption_order: Sequence[str] = datakey.DEFAULT_DECRYPTION_ORDER,
    data_key: DataKey | None = None,
    keep_outputs: bool = False,
    keep_ivs: bool = True,
    consume: bool = False,
) -> Decrypted:
    """Decrypt parsed documents and verify the MAC (unless ``ignore_mac``).

    ``keep_ivs`` fills the result's IV stash, which re-encryption needs to keep
    unchanged values byte-identical; a plain decrypt skips it (it is about as big
    as the plaintext).  ``consume`` empties ``parsed``'s documents while decrypting
    them (see :meth:`Walker.decrypt_document`), for callers done with the input.
    """
    meta = read_metadata(parsed)
    unwrapped_by: list[str] = []
    key = data_key or datakey.unwrap(meta, decryption_order, used=unwrapped_by)
    stash: dict[StashKey, bytes] = {}
    cipher = Cipher(key, stash if keep_ivs else None)
    outputs: list[Any] | None = [] if keep_outputs else None
    walker = Walker(cipher, meta.rule, outputs)
    documents = [walker.decrypt_document(document, consume=consume) for document in parsed.documents]
    if consume:
        parsed.documents.clear()
    if not ignore_mac:
        verify_mac(meta, key, walker.mac_hex())
    if data_key is None:
        audit_unwrap(unwrapped_by, parsed.fmt)
    return Decrypted(parsed.fmt, documents, meta, key, stash, outputs, parsed)


def verify_mac(meta: Metadata, key: DataKey, computed: str) -> None:
    if not meta.mac:
        raise MacMismatch("the file has no MAC; it may have been tampered with (use --ignore-mac to decrypt anyway)")
    try:
        stored, type_tag = Cipher(key).open(meta.mac, meta.mac_aad)
    except TreeDecryptError:
        # matches sops: a MAC that does not decrypt is reported as a mismatch (exit 51)
        raise MacMismatch("MAC mismatch: the MAC or lastmodified was altered") from None
    if not constant_time_equal(stored, computed.encode()):
        raise MacMismatch("MAC mismatch: the file was modified outside the tool or is corrupt")


def decrypt_bytes(
    data: bytes | bytearray,
    fmt: str,
    output_fmt: str | None = None,
    *,
    ignore_mac: bool = False,
    extract: str | None = None,
    decryption_order: Sequence[str] = datakey.DEFAULT_DECRYPTION_ORDER,
    yaml_indent: int = 4,
    json_indent: int | None = None,
    keep_layout: bool = True,
) -> bytes:
    """Decrypt an encrypted file's bytes into plaintext in ``output_fmt`` (default: ``fmt``).

    YAML keeps the file's own layout unless ``keep_layout`` is False (``--indent``).
    A ``bytearray`` is taken over, as by :func:`parse`.
    """
    out_fmt = output_fmt or fmt
    unwrapped = None
    if fmt == "yaml" and out_fmt == "yaml" and keep_layout and extract is None and _in_two_processes(len(data)):
        from . import halves

        plaintext, unwrapped = halves.decrypt_yaml(data, ignore_mac=ignore_mac, decryption_order=decryption_order)
        if plaintext is not None:
            return plaintext
    parsed = parse(data, fmt, encrypted=True)
    key = None
    if unwrapped is not None and unwrapped.metadata == parsed.metadata_tree:
        key = unwrapped.key  # unwrapped already: not asked of a KMS twice
    splice = (keep_layout and out_fmt == "yaml" and parsed.yaml_file is not None
              and parsed.yaml_file.spliceable and extract is None)
    toml_splice = out_fmt == "toml" and parsed.toml_file is not None and extract is None
    # what follows reads the decrypted tree and the splice spans only: free the input while decrypting
    result = decrypt_parsed(parsed, ignore_mac=ignore_mac, decryption_order=decryption_order, data_key=key,
                            keep_outputs=splice or toml_splice, keep_ivs=False, consume=_consumable(parsed))
    if key is not None and unwrapped is not None:
        audit_unwrap(unwrapped.used, fmt)
    if extract is not None:
        return extract_value(result.documents[0], extract, out_fmt, yaml_indent, json_indent)
    if splice:
        from .stores import yaml_store

        assert result.outputs is not None
        return yaml_store.splice(parsed.yaml_file, result.outputs, encrypting=False, metadata_text=None).encode()
    if toml_splice:
        from .stores import toml_store

        assert result.outputs is not None
        spliced = toml_store.splice(parsed.toml_file, result.outputs, result.documents, encrypting=False,
                                    metadata=None)
        if spliced is not None:
            return spliced
    return _emit_plain(result.documents, out_fmt, yaml_indent, json_indent)


def extract_value(document: dict[Any, Any], path_text: str, fmt: str, yaml_indent: int = 4,
                  json_indent: int | None = None) -> bytes:
    """``--extract``: a scalar is printed raw, a subtree in the output format."""
    from . import paths

    value = paths.lookup(document, paths.parse(path_text))
    if value.__class__ in (dict, list):
        if fmt == "json":
            from .stores import json_store

            return json_store.dump_value(strip_comments(value), json_indent)
        from .stores.yaml_emit import emit_value

        return emit_value(value, yaml_indent).encode()
    if isinstance(value, bytes):
        return value
    if isinstance(value, Comment):
        return value.text.encode()
    if value.__class__ is str:
        return value.encode("utf-8", "surrogateescape")
    if fmt == "json":
        from .stores import json_store

        return json_store.dump_value(value, json_indent)
    # matches sops: other scalars go through go-yaml's encoder, which ends the line
    from .codec import go_float_g, go_time_text

    if value is None:
        return b"null\n"
    if value.__class__ is bool:
        return b"true\n" if value else b"false\n"
    if value.__class__ is float:
        return go_float_g(value).encode() + b"\n"
    if isinstance(value, datetime):
        return go_time_text(value).encode() + b"\n"
    return str(value).encode() + b"\n"


def decrypt_data(
    data: bytes, fmt: str, *, ignore_mac: bool = False,
    decryption_order: Sequence[str] = datakey.DEFAULT_DECRYPTION_ORDER,
) -> Decrypted:
    """Decrypt bytes into a :class:`Decrypted` (documents, metadata, data key)."""
    return decrypt_parsed(parse(data, fmt, encrypted=True), ignore_mac=ignore_mac, decryption_order=decryption_order)


def check_not_empty(data: bytes) -> None:
    if not data:
        raise EmptyDocument("file cannot be completely empty")


__all__ = [
    "Decrypted",
    "EncryptOptions",
    "Parsed",
    "SopsError",
    "decrypt_bytes",
    "decrypt_data",
    "decrypt_parsed",
    "encrypt_bytes",
    "encrypt_data",
    "encrypt_parsed",
    "extract_value",
    "parse",
    "read_metadata",
]


# -- re-encryption (rotate, recipient changes) ------------------------------------------


def reencrypt(
    decrypted: Decrypted,
    wrapped: tuple[list[list[metadata_mod.Entry]], int],
    *,
    data_key: DataKey | None = None,
    output_fmt: str | None = None,
    yaml_indent: int = 4,
    json_indent: int | None = None,
) -> bytes:
    """Encrypt a decrypted file again with ``data_key`` (default: its own) and the ``wrapped`` key groups.

    The file's encryption rule and unknown ``sops`` fields are kept, and every
    unchanged value keeps its IV (so with the file's own data key its ciphertext is
    byte-identical).  YAML and TOML keep their layout when ``decrypted`` was made with
    ``keep_outputs=True``: the plaintext is spliced, then encrypted by splicing again.
    """
    fmt = output_fmt or decrypted.fmt
    meta = decrypted.metadata
    parsed: Parsed | None = None
    source = decrypted.source
    plaintext: bytes | None = None
    if fmt == decrypted.fmt and decrypted.outputs is not None and source is not None:
        if fmt == "yaml" and source.yaml_file is not None and source.yaml_file.spliceable:
            from .stores import yaml_store

            plaintext = yaml_store.splice(source.yaml_file, decrypted.outputs, encrypting=False,
                                          metadata_text=None).encode()
        elif fmt == "toml" and source.toml_file is not None:
            from .stores import toml_store

            plaintext = toml_store.splice(source.toml_file, decrypted.outputs, decrypted.documents,
                                          encrypting=False, metadata=None)
    if plaintext is not None:
        candidate = parse(plaintext, fmt, encrypted=False)
        # the splice must give back exactly the decrypted values; if not, lose the layout, never data
        if _same_tree(candidate.documents, decrypted.documents):
            parsed = candidate
    if parsed is None:
        parsed = Parsed(decrypted.fmt, decrypted.documents)
    options = EncryptOptions([], meta.rule, 0, yaml_indent, json_indent)
    return encrypt_parsed(parsed, options, fmt, data_key=data_key or decrypted.data_key, stash=decrypted.stash,
                          wrapped=wrapped, metadata_extra=dict(meta.extra))


def _same_tree(a: Any, b: Any) -> bool:
    """Type-strict equality of two trees (``1`` is not ``1.0`` or ``True``); comments by text."""
    if a.__class__ is not b.__class__:
        return False
    if a.__class__ is dict:
        return len(a) == len(b) and all(
            _same_tree(ka, kb) and _same_tree(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items())
        )
    if a.__class__ is list:
        return len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b))
    if a.__class__ is Comment:
        return bool(a.text == b.text)
    if a.__class__ is float:
        return repr(a) == repr(b)
    return bool(a == b)


# -- audit hook -----------------------------------------------------------------------


def audit_unwrap(recipients: list[str], fmt: str) -> None:
    """Report a decrypt that unwrapped a data key to the opt-in audit log (a few stats when off)."""
    from . import audit

    audit.record_decrypt(recipients, fmt)
