"""The relay benchmark (``python bench/relay.py``), in modules of one concern each.

:mod:`~bench.relaylib.targets` the executors under test and how each is started,
:mod:`~bench.relaylib.run` one run's rendezvous, registry and bookkeeping (and where the harness
runs), :mod:`~bench.relaylib.phases` the measurements and the table, :mod:`~bench.relaylib.cli`
the command line and the markdown report. The workloads themselves are :mod:`bench.workloads`,
shared with the harness worker process.
"""
