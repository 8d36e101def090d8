"""A local S3: moto's S3 server (the real wire protocol: SigV4-signed requests, XML, multipart
uploads, ListParts) behind a thin WSGI layer that makes it as strict as S3 where moto is lenient,
and injects faults.

- access keys are checked (``InvalidAccessKeyId``, 403), as S3 does; moto accepts any;
- ``x-amz-checksum-sha256`` is checked against the body (``BadDigest``, 400), as S3 does;
- ``fail_part(key, number, times)`` answers that part's upload with 500 ``InternalError``;
- every request is recorded (operation, key, part number, whether it carried a checksum).

boto3 (the real client) talks to it over a socket on 127.0.0.1; nothing is patched.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
from werkzeug.serving import make_server

ACCESS_KEY = "AKIAMODELARIUMTEST00"
SECRET_KEY = "modelarium-test-secret-key-0000000000000"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Request:
    op: str
    bucket: str
    key: str
    part: int | None
    checksum: str | None
    size: int


def _error(start_response: Any, status: str, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>fake</RequestId></Error>"
    ).encode()
    start_response(
        status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _operation(method: str, query: dict[str, list[str]], key: str) -> str:
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPart"
        return "PutObject" if key else "CreateBucket"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "delete" in query:
            return "DeleteObjects"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        if "uploads" in query:
            return "ListMultipartUploads"
        return "GetObject" if key else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if key else "HeadBucket"
    return method


class FakeS3:
    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self._moto = DomainDispatcherApplication(create_backend_app)
        self.access_keys = {ACCESS_KEY}
        self.requests: list[S3Request] = []
        self._failures: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- control ------------------------------------------------------------------------------

    def start(self) -> FakeS3:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(10)

    def __enter__(self) -> FakeS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_part(self, key: str, number: int, times: int = 1) -> None:
        """The next ``times`` uploads of part ``number`` of an object whose key ends with ``key``
        get 500 InternalError (``times=-1``: every one)."""
        with self._lock:
            self._failures[(key, number)] = times

    def ops(self, op: str) -> list[S3Request]:
        with self._lock:
            return [r for r in self.requests if r.op == op]

    def client(
        self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, config: Any = None
    ) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )

    def env(self) -> dict[str, str]:
        """AWS's own variables, as a deployment would set them."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    # -- the WSGI layer -----------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = unquote(environ.get("PATH_INFO", ""))
        bucket, _, key = path.lstrip("/").partition("/")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        method = environ["REQUEST_METHOD"]
        if bucket == "moto-api":
            return self._moto(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        op = _operation(method, query, key)
        part = int(query["partNumber"][0]) if "partNumber" in query else None
        checksum = environ.get("HTTP_X_AMZ_CHECKSUM_SHA256")
        with self._lock:
            self.requests.append(S3Request(op, bucket, key, part, checksum, len(body)))
        credential = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        if credential is None or credential.group(1) not in self.access_keys:
            return _error(
                start_response,
                "403 Forbidden",
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        if "STREAMING-" in environ.get("HTTP_X_AMZ_CONTENT_SHA256", ""):
            return _error(
                start_response, "501 Not Implemented", "NotImplemented", "aws-chunked bodies"
            )
        if op == "UploadPart" and part is not None:
            with self._lock:
                for (suffix, number), left in list(self._failures.items()):
                    if number == part and key.endswith(suffix) and left != 0:
                        self._failures[(suffix, number)] = left - 1 if left > 0 else -1
                        return _error(
                            start_response,
                            "500 Internal Server Error",
                            "InternalError",
                            "We encountered an internal error. Please try again.",
                        )
        if checksum is not None and method == "PUT":
            actual = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if actual != checksum:
                return _error(
                    start_response,
                    "400 Bad Request",
                    "BadDigest",
                    "The SHA256 you specified did not match the calculated checksum.",
                )
        return self._moto(environ, start_response)

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10
        ).read()
        with self._lock:
            self.requests.clear()
            self._failures.clear()


@pytest.fixture(scope="session")
def _s3_server() -> Iterator[FakeS3]:
    server = FakeS3().start()
    yield server
    server.stop()


@pytest.fixture
def fake_s3(_s3_server: FakeS3, monkeypatch: pytest.MonkeyPatch) -> FakeS3:
    """A running :class:`FakeS3` (emptied for each test), with AWS's variables set to its access
    key: the standard credential chain finds them, as in production."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in _s3_server.env().items():
        monkeypatch.setenv(name, value)
    _s3_server.reset()
    _s3_server.access_keys = {ACCESS_KEY}
    return _s3_server
