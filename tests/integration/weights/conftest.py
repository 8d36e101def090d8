"""Crash tests: the fake hub (a plugin, see tests/conftest.py) in this process, workers in their
own processes."""
