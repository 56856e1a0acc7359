"""The conformance runner (``python scripts/conformance.py``), in modules of one concern each.

:mod:`~scripts.conformancelib.sessions` the session scripts, :mod:`~scripts.conformancelib.runner`
playing one against one target, :mod:`~scripts.conformancelib.normalise` and
:mod:`~scripts.conformancelib.compare` making transcripts comparable and comparing them,
:mod:`~scripts.conformancelib.known` the documented differences; the transports are
:mod:`~scripts.conformancelib.transport` (local websocket), :mod:`~scripts.conformancelib.remote`
(relay) and :mod:`~scripts.conformancelib.stdio`; :mod:`~scripts.conformancelib.launch` finds and
launches the executors (shared with ``bench/``), :mod:`~scripts.conformancelib.cli` is the command
line.
"""
