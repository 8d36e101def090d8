"""How an InferenceService's status reads: ready, failed, stopped or still on its way."""

from __future__ import annotations

from typing import Any

from modelarium.core.deployments.status import STOP_ANNOTATION, health


def _isvc(ready: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "chat", "generation": 3, "annotations": annotations or {}},
        "status": {"observedGeneration": 3, "conditions": [{"type": "Ready", **ready}]},
    }


def test_a_started_service_whose_status_still_says_stopped_is_starting_not_failed() -> None:
    # `deployment start` removes the annotation; until KServe reconciles, the status is the old
    # one. Read as failed, the start change failed at once with the outcome "Stopped".
    stale = _isvc({"status": "False", "reason": "Stopped"})
    assert health(stale).state == "progressing"
    stopped = _isvc({"status": "False", "reason": "Stopped"}, {STOP_ANNOTATION: "true"})
    assert health(stopped).state == "stopped"


def test_a_ready_false_with_a_real_reason_is_failed() -> None:
    failed = _isvc({"status": "False", "reason": "RevisionFailed", "message": "OOMKilled"})
    state = health(failed)
    assert (state.state, state.why()) == ("failed", "RevisionFailed: OOMKilled")
    assert health(_isvc({"status": "True"})).state == "ready"
