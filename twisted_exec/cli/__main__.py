"""``python -m twisted_exec.cli`` = ``codex-exec``."""

from twisted_exec.cli.main import main

main()
