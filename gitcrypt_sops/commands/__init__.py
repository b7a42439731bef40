"""The commands of the CLI, one module per family; each is imported only when invoked.

A command module defines ``add_arguments(command, parser)`` and
``run(command, args) -> int``; :data:`gitcrypt_sops.cli.COMMANDS` names the module
of every command.
"""
