"""The benchmarks, as a package so that tests import their helpers by name (``bench.benchlib``).

Each benchmark is still run as a script from the repository root (``python bench/relay.py``,
bench/README.md); the scripts put the repository root on ``sys.path`` and import their siblings as
``bench.*``. Not shipped: pyproject's package list names only ``twisted_exec`` and the plugins.
"""
