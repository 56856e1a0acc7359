"""Set-up the test files share: child processes, reference binaries, relay fixtures, fakes.

Not tests themselves (no ``test_`` modules here). Each helper replaced copies that had been
pasted into several test files; keeping one copy means a fix to, say, how a child is killed at
cleanup reaches every test that spawns one.
"""
