"""The Hugging Face Hub client, configured once: endpoint, token, timeouts, error mapping.

``HF_ENDPOINT`` is read by huggingface_hub at import time, so the endpoint is always passed
explicitly here; that is also what lets tests point the real client at a local fake hub.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import huggingface_hub
from huggingface_hub import HfApi
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import _http as hf_http

from modelarium.config.settings import Settings
from modelarium.core.errors import (
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
    UpstreamError,
)


def _client_that_outlives_resets() -> Any:
    """huggingface_hub's own client, minus ``close()``.

    huggingface_hub shares one HTTP client per process and closes it whenever any request
    meets a connection error (to shed stale TLS sessions). Closing it killed every other
    thread's transfer on it mid-read ("Bad file descriptor"): in the bot, one unreachable
    mirror or one refused connection failed every Hub call beside it. huggingface_hub drops
    the client all the same and makes a new one for the next call, so this one is left to
    finish what it carries and be collected.
    """
    client = hf_http.default_client_factory()
    client.close = lambda: None  # type: ignore[method-assign]
    return client


huggingface_hub.set_client_factory(_client_that_outlives_resets)


def hub_api(settings: Settings) -> HfApi:
    token = settings.hf_token.get_secret_value() if settings.hf_token else False
    return HfApi(endpoint=settings.hf_endpoint.rstrip("/"), token=token)


def hub_token(settings: Settings) -> str | None:
    return settings.hf_token.get_secret_value() if settings.hf_token else None


class HubUnreachableError(UnreachableError):
    """The hub did not answer (network, DNS, timeout, 5xx)."""


@contextmanager
def hub_errors(what: str) -> Iterator[None]:
    """Translate huggingface_hub/httpx exceptions into one-line Modelarium errors."""
    try:
        yield
    except hf_errors.LocalEntryNotFoundError as exc:
        # Raised by downloads when the Hub could not be reached and nothing is cached; it
        # subclasses EntryNotFoundError, so it must be caught before "no such file".
        raise HubUnreachableError(f"Hugging Face is unreachable ({_short(exc)})") from None
    except hf_errors.GatedRepoError:
        raise PermissionDeniedError(
            f"{what} is gated: accept its terms on the Hub and set HF_TOKEN"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise NotFoundError(f"{what}: no such model on the Hub (or it is private)") from None
    except hf_errors.RevisionNotFoundError:
        raise NotFoundError(f"{what}: no such revision") from None
    except hf_errors.EntryNotFoundError:
        raise NotFoundError(f"{what}: no such file") from None
    except hf_errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status is not None and status < 500 and status != 429:
            raise UpstreamError(f"Hugging Face refused {what} (HTTP {status})") from None
        raise HubUnreachableError(f"Hugging Face is unreachable ({_short(exc)})") from None
    except (httpx.HTTPError, OSError) as exc:
        raise HubUnreachableError(f"Hugging Face is unreachable ({_short(exc)})") from None
    except Exception as exc:
        # huggingface_hub 2.x uses httpx2, whose exceptions are not httpx's; classify by name.
        if type(exc).__module__.split(".")[0] in {"httpx2", "httpcore", "httpcore2"}:
            raise HubUnreachableError(f"Hugging Face is unreachable ({_short(exc)})") from None
        raise


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__
