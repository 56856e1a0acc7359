"""``http/request`` and stdio mode, the reference against ours (``python
scripts/conformance_http_stdio.py``), in modules of one concern each.

:mod:`~scripts.httpstdiolib.cases` what both executors are sent,
:mod:`~scripts.httpstdiolib.executor` a stdio executor under test,
:mod:`~scripts.httpstdiolib.httpcases` and :mod:`~scripts.httpstdiolib.stdiocases` running and
comparing each part, :mod:`~scripts.httpstdiolib.cli` the command line.
"""
