"""The web application: FastAPI with the API routes and the Gradio UI at "/".

``create_app(lingxi)`` builds one ASGI app per process around an existing
``Lingxi`` object; it starts no server (``app.py serve`` does, with uvicorn).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from assistant.api import router
from assistant.schedule_api import install_error_handlers
from assistant.schedule_api import router as schedule_router
from assistant.services import Lingxi


def create_app(lingxi: Lingxi) -> FastAPI:
    app = FastAPI(title="Lingxi", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.lingxi = lingxi
    app.include_router(router)
    app.include_router(schedule_router)
    install_error_handlers(app)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'body'}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": {"code": "bad_request", "message": problems}}, status_code=400)

    import gradio as gr

    from ui.chat import build_ui
    from ui.i18n import make_i18n

    blocks = build_ui(lingxi)
    return gr.mount_gradio_app(app, blocks, path="/", i18n=make_i18n())
