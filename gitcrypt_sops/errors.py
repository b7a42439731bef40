"""The exception tree: every failure the tool reports, each with its exit code.

Exit codes reuse the numbers of sops's ``cmd/sops/codes`` where the same condition
exists, so scripts written for sops keep working.  Messages never carry plaintext
values or key material: they name files, key paths and recipients only.
"""

from __future__ import annotations


class SopsError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(SopsError):
    """Bad command line (unknown flag, missing argument)."""

    exit_code = 1


class InputError(SopsError):
    """The input file cannot be read or parsed (sops: CouldNotReadInputFile)."""

    exit_code = 2


class OutputError(SopsError):
    """The output cannot be written (sops: CouldNotWriteOutputFile)."""

    exit_code = 3


class EmitError(SopsError):
    """The tree cannot be written in the output format (sops: ErrorDumpingTree)."""

    exit_code = 4


class ConfigError(SopsError):
    """A config or policy file is malformed.

    sops defines ErrorReadingConfig (5) but exits 1 for every config problem; we match what it does.
    """

    exit_code = 1


class EncryptionContextError(SopsError):
    """Bad ``--encryption-context`` (sops: ErrorInvalidKMSEncryptionContextFormat)."""

    exit_code = 6


class InvalidSetFormat(SopsError):
    """Bad value for ``set`` (sops: ErrorInvalidSetFormat)."""

    exit_code = 7


class ConflictingParameters(SopsError):
    """Options that exclude each other (sops: ErrorConflictingParameters)."""

    exit_code = 8


class MacEncryptError(SopsError):
    exit_code = 21


class TreeEncryptError(SopsError):
    """The tree cannot be encrypted, e.g. a non-string key (sops: ErrorEncryptingTree)."""

    exit_code = 23


class MacDecryptError(SopsError):
    """The stored MAC cannot be decrypted (sops: ErrorDecryptingMac)."""

    exit_code = 24


class TreeDecryptError(SopsError):
    """A value cannot be decrypted (sops: ErrorDecryptingTree)."""

    exit_code = 25


class MacMismatch(SopsError):
    """The MAC does not match the content, or is missing (sops: MacMismatch)."""

    exit_code = 51


class ConfigNotFound(SopsError):
    """An explicit ``--config`` file does not exist (sops exits 1, not ConfigFileNotFound 61)."""

    exit_code = 1


class InvalidTreePath(SopsError):
    """A path such as ``["a"][0]`` is malformed or absent (sops: InvalidTreePathFormat)."""

    exit_code = 91


class PathNotFound(InvalidTreePath):
    """A well-formed path that names nothing in the tree (sops exits 1 here)."""

    exit_code = 1


class EmptyDocument(SopsError):
    """An empty input file (sops: NeedAtLeastOneDocument)."""

    exit_code = 92


class NoFileSpecified(SopsError):
    """The input file does not exist (sops exits 100 for it)."""

    exit_code = 100


class NoEncryptionKey(SopsError):
    """No recipient was given or configured (sops exits 1 here, not NoEncryptionKeyFound 111)."""

    exit_code = 1


class DataKeyError(SopsError):
    """No recipient could unwrap the data key (sops: CouldNotRetrieveKey)."""

    exit_code = 128


class FileNotModified(SopsError):
    exit_code = 200


class NoEditor(SopsError):
    exit_code = 201


class AlreadyEncrypted(SopsError):
    """The input already carries sops metadata (sops: FileAlreadyEncrypted)."""

    exit_code = 203


class MetadataNotFound(SopsError):
    """The input has no ``sops`` metadata: it is not an encrypted file."""

    exit_code = 1


class CommandNotRun(SopsError):
    """exec-env / exec-file could not start the command: 127 not found, 126 not executable (as a shell)."""

    exit_code = 127

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message, hint=hint)
        if exit_code is not None:
            self.exit_code = exit_code
