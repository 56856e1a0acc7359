"""``python -m twisted_exec.cli`` = ``codex-exec``."""

from .main import main

main()
