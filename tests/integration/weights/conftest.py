"""Crash tests: the fake hub in this process, workers in their own processes."""

from __future__ import annotations

from tests.fakes.hf_hub import fake_hub

__all__ = ["fake_hub"]  # the fixture is imported for pytest
