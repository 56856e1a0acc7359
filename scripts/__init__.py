"""The repository's tools (conformance runs, soak, probes), a package so tests import them by name.

Each tool is still run as a script from the repository root (``python scripts/conformance.py``);
the scripts put the repository root on ``sys.path`` and import their code as ``scripts.*``. Not
shipped: pyproject's package list names only ``twisted_exec`` and the plugins.
"""
