"""``codex-exec``: the command-line harness (see :mod:`twisted_exec.cli.main`)."""
