"""Finding the config file (``.sops-policy.yaml`` / ``.sops.yaml``) without loading it.

Kept apart from :mod:`.config` so that commands run with no config file in reach
never import the loader (and its YAML parser).
"""

from __future__ import annotations

import os

from .errors import ConfigNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: the names looked for in each directory, first match wins
CONFIG_NAMES: tuple[str, ...] = (".sops-policy.yaml", ".sops.yaml")
_IGNORED_NAME = ".sops.yml"
_MAX_DEPTH = 100


def _warn(message: str, *args: object) -> None:
    import logging

    logging.getLogger("gitcrypt_sops.config").warning(message, *args)


def find_config_path(
    target: str | os.PathLike[str] | None,
    explicit: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> str | None:
    """The config file that governs ``target``, or None when there is none.

    ``explicit`` (the ``--config`` option) wins, then ``SOPS_CONFIG`` (an empty
    value counts as unset, as in sops); a named file that does not exist raises
    :class:`ConfigNotFound`.  Otherwise the directories from the target's own up
    to the root (at most 100) are searched, and in each the first of
    ``.sops-policy.yaml`` and ``.sops.yaml`` that exists is taken.

    Differences from sops, on purpose: sops starts from the current directory
    whatever the target is; we start from the target's directory (the current
    directory when ``target`` is None, e.g. stdin without ``--filename-override``),
    so a file is governed by the config of its own tree.  ``.sops-policy.yaml`` is
    ours.  The walk is lexical on the absolute path (symlinks are not resolved).
    Like sops, a ``.sops.yml`` is never read; it only causes a warning.
    """
    named = explicit or env.get("SOPS_CONFIG") or None
    if named is not None:
        if not os.path.exists(named):
            # sops: exit 1, "could not read config file: open …: no such file or directory"
            raise ConfigNotFound(f"config file not found: {named}")
        return named
    directory = os.path.dirname(os.path.abspath(os.fspath(target))) if target is not None else os.getcwd()
    ignored: str | None = None
    for _ in range(_MAX_DEPTH):
        for name in CONFIG_NAMES:
            candidate = os.path.join(directory, name)
            if os.path.exists(candidate):
                if ignored is not None:
                    _warn("ignoring %s: the config file must be called .sops.yaml; using %s instead", ignored, candidate)
                return candidate
        if ignored is None and os.path.exists(os.path.join(directory, _IGNORED_NAME)):
            ignored = os.path.join(directory, _IGNORED_NAME)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    if ignored is not None:
        _warn("ignoring %s: the config file must be called .sops.yaml", ignored)
    return None
