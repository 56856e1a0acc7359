"""Thin IO helpers shared by the executor, the rendezvous and the harness."""
