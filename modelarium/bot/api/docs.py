"""``/api/v1/docs``: Swagger UI served from the ``swagger-ui-py`` package, never from a CDN, so the
page works on a machine without internet access."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_PATH = "/docs/static"


def swagger_ui_dir() -> Path:
    """The Swagger UI 5 assets shipped inside the ``swagger_ui`` package (not imported: only
    its files are used)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing; reinstall modelarium")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def static_files() -> StaticFiles:
    return StaticFiles(directory=swagger_ui_dir())


def docs_page(request: Request, title: str) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    static = f"{root}{STATIC_PATH}"
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=title,
        swagger_js_url=f"{static}/swagger-ui-bundle.js",
        swagger_css_url=f"{static}/swagger-ui.css",
        swagger_favicon_url=f"{static}/favicon-32x32.png",
        swagger_ui_parameters={"persistAuthorization": False, "tryItOutEnabled": False},
    )
