"""git integration: the diff (textconv) and merge drivers, their installer, and repo-wide runs.

* :mod:`.git` — the git plumbing every part uses (repository root, file lists,
  the index, history, a ``cat-file --batch`` reader);
* :mod:`.scan` — ``check`` over paths, directories and staged files;
* :mod:`.textconv` — what ``git diff`` shows for an encrypted file;
* :mod:`.merge` — the three-way merge driver and ``git resolve``;
* :mod:`.install` — ``.gitattributes`` entries, git config and the pre-commit hook;
* :mod:`.bulk` — repo-wide ``updatekeys``/``rotate``/``decrypt``: a plan, then the work;
* :mod:`.keycache` — each data key unwrapped once per process.

Every driver works through :mod:`gitcrypt_sops.api`; none writes plaintext into
the working tree or the repository.
"""
