"""The suite's own set-up: what the timing-sensitive tests rely on from pytest-xdist."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("daemons")
def test_xdist_groups_are_honoured(request: pytest.FixtureRequest) -> None:
    """The daemon-process tests share one worker only if loadgroup tags their ids; a pytest
    release that stops reading what pytest-xdist writes turns the mark into a silent no-op."""
    if not hasattr(request.config, "workerinput"):
        pytest.skip("only meaningful in a pytest-xdist worker (the suite's default)")
    assert request.config.getvalue("loadgroup"), "the suite runs with --dist loadgroup"
    assert request.node.nodeid.endswith("@daemons"), request.node.nodeid
