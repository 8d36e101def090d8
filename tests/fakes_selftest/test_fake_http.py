"""Self-tests for the shared fake-server base in tests/fakes/http.py."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request

import pytest

from tests.fakes.http import FakeHTTPServer, Request, Response


class Echo(FakeHTTPServer):
    def handle(self, request: Request) -> Response:
        if request.route == "/boom":
            raise RuntimeError("bug in the fake")
        if request.route == "/cut":
            return Response(body=b"x" * 1000, abort_after=100)
        return Response.json(
            {"route": request.route, "query": request.query, "body": request.json()}
        )


def test_records_and_echoes() -> None:
    with Echo() as fake:
        req = urllib.request.Request(fake.url + "/a?x=1&x=2", data=b'{"k": 1}', method="PUT")
        with urllib.request.urlopen(req) as resp:
            assert resp.read() == b'{"route": "/a", "query": {"x": ["1", "2"]}, "body": {"k": 1}}'
        method, path, headers, body = fake.requests[0]
        assert (method, path, body) == ("PUT", "/a?x=1&x=2", b'{"k": 1}')
        assert headers["content-length"] == "8"  # names are lower-cased
    with pytest.raises(RuntimeError):
        _ = fake.url  # stopped


def test_head_keeps_length_and_chunked_bodies() -> None:
    with Echo() as fake:
        conn = http.client.HTTPConnection("127.0.0.1", fake.port)
        conn.request("HEAD", "/h")
        resp = conn.getresponse()
        assert int(resp.headers["Content-Length"]) > 0
        assert resp.read() == b""
        conn.request("POST", "/c", body=iter([b'{"a"', b": 2}"]), encode_chunked=True)
        assert b'"body": {"a": 2}' in conn.getresponse().read()
        conn.close()


def test_handler_errors_become_500_and_are_kept() -> None:
    with Echo() as fake:
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(fake.url + "/boom")
        assert exc.value.code == 500
        assert isinstance(fake.errors[0], RuntimeError)
        fake.clear_requests()
        assert fake.requests == []
        assert fake.errors == []


def test_abort_after_cuts_the_body() -> None:
    with Echo() as fake, pytest.raises(http.client.IncompleteRead):
        urllib.request.urlopen(fake.url + "/cut").read()
