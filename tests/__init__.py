"""The test suite. Every run is watched for secrets in log lines (``tests/logguard.py``)."""

from tests.logguard import GUARD

GUARD.install()
