"""huggingface_hub shares one HTTP client per process and closes it whenever any request meets
a connection error. Every other thread's transfer on that client then died mid-read ("Bad file
descriptor"): in the bot, one unreachable mirror or one refused connection failed every Hub call
running beside it (seen as a flaky test: a config download failing while another test's
leftover thread met a stopped fake hub)."""

from __future__ import annotations

import socket
import threading
import time

import huggingface_hub
import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.utils import http_backoff

from modelarium.config import Settings
from modelarium.core.clients.huggingface import hub_api
from tests.fakes.hf_hub import FakeHub
from tests.unit.discovery.hubdata import LLAMA_8B, QWEN_7B


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_connection_error_elsewhere_does_not_kill_transfers_in_flight(
    settings: Settings, hub: FakeHub
) -> None:
    api = hub_api(settings)  # Modelarium's Hub set-up, as its Hub calls make it
    hub.throttle(2_000, repo_id=QWEN_7B, filename="config.json")  # a body that takes a while
    outcome: dict[str, object] = {}

    def download() -> None:
        try:
            outcome["path"] = hf_hub_download(
                QWEN_7B, "config.json", endpoint=settings.hf_endpoint,
                cache_dir=settings.data_dir / "hf", token=False,
            )  # fmt: skip
        except Exception as exc:  # reported below
            outcome["error"] = exc

    transfer = threading.Thread(target=download)
    transfer.start()
    time.sleep(0.3)  # the download is reading its body
    shared = huggingface_hub.get_session()
    # another thread cannot connect: huggingface_hub resets its shared client
    with pytest.raises(Exception, match=r"(?i)refused"):
        http_backoff("GET", f"http://127.0.0.1:{_closed_port()}/", max_retries=0)
    assert huggingface_hub.get_session() is not shared, "the reset under test happened"
    transfer.join(10)
    assert "error" not in outcome, repr(outcome.get("error"))
    assert outcome["path"]
    assert api.model_info(LLAMA_8B).id == LLAMA_8B  # and the next client works
