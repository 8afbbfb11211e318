"""OpenAI-compatible HTTP API over an ``LLMEngine`` (``python app.py engine serve``).

Endpoints (``create_server(engine) -> FastAPI``):

* ``GET /health``, ``GET /v1/models`` (and ``/v1/models/{id}``): the one model, named
  ``engine.model_name``.  Any ``model`` in a request is accepted; replies name the served one.
* ``POST /v1/chat/completions``: messages (system/developer/user/assistant with tool_calls/tool),
  ``tools`` with ``tool_choice`` "auto" (default) or "none", sampling parameters, ``stream`` with
  ``stream_options.include_usage``.  The prompt is the checkpoint's chat template; tool
  definitions are injected into the system prompt (not when tool_choice is "none").
* ``POST /v1/completions``: a raw prompt (a string, or a list of one string or of token ids),
  no chat template, streamed or not.

Streams are Server-Sent Events in exactly OpenAI's chunk shapes, ending with ``data: [DONE]``.
A client that disconnects cancels its request in the engine (the engine's ``stream`` is closed).
Bad requests, and prompts that do not fit the context, get HTTP 400 before any response starts.

This module is the routes, the token budget and the streaming/cancellation plumbing only: the
request models, what is not supported and the error shape are in protocol.py; turning engine
``Output`` deltas into OpenAI objects (tool calls included) is in translate.py.  There is no
authentication: serve on loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .config import EngineError
from .copyguide import guide_for, warm
from .protocol import (APIError, ChatRequest, CompletionRequest, SamplingRequest, bad_request,
                       from_engine_error, from_validation)
from .sampler import SamplingParams
from .translate import ChatTranslator, CompletionTranslator

log = logging.getLogger("lingxi.engine.server")

# Chat requests without max_tokens may use the rest of the context, but no more than this.
DEFAULT_CHAT_MAX_TOKENS = 4096
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


def _sse(obj) -> str:
    return "data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n\n"


def _context_length(engine) -> int | None:
    for value in (getattr(engine, "max_context", None),
                  getattr(getattr(engine, "config", None), "max_position_embeddings", None)):
        if isinstance(value, int) and value > 0:
            return value
    return None


async def _wait_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _ClientGone(Exception):
    pass


def create_server(engine, *, default_max_tokens: int = DEFAULT_CHAT_MAX_TOKENS) -> FastAPI:
    """The OpenAI-compatible app for ``engine`` (an ``LLMEngine``; the caller closes it).
    ``default_max_tokens`` caps chat replies whose request sets no ``max_tokens``."""
    app = FastAPI(title="Lingxi local engine", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    warm(engine)  # the copy guide's tables, so the first guided request does not wait for them
    model_name = getattr(engine, "model_name", "local")
    tokenizer = engine.tokenizer
    started = int(time.time())

    @app.exception_handler(APIError)
    async def _api_error(_request, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_request, exc: RequestValidationError):
        return from_validation(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, exc: StarletteHTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return APIError(str(exc.detail), status=exc.status_code, type=kind).response()

    async def parse(request: Request, model_cls):
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(None, f"the request body is not valid JSON: {exc}", "invalid_json")
        if not isinstance(body, dict):
            raise bad_request(None, "the request body must be a JSON object")
        try:
            return model_cls.model_validate(body)
        except ValidationError as exc:
            raise from_validation(exc)

    def budget(prompt_len: int, requested: int | None, default: int, param: str) -> int:
        """max_tokens for the engine; 400 when the prompt (plus what was asked) does not fit."""
        ctx = _context_length(engine)
        if ctx is None:
            return requested or default
        if prompt_len >= ctx:
            raise bad_request(param, f"This model's maximum context length is {ctx} tokens, but the prompt "
                                     f"has {prompt_len} tokens. Please shorten it.", "context_length_exceeded")
        if requested is not None and prompt_len + requested > ctx:
            raise bad_request("max_tokens", f"This model's maximum context length is {ctx} tokens. However, "
                                            f"you requested {prompt_len + requested} tokens ({prompt_len} in "
                                            f"the prompt, {requested} for the completion). Please reduce the "
                                            f"length of the prompt or max_tokens.", "context_length_exceeded")
        return requested or min(default, ctx - prompt_len)

    def start(prompt_ids: list[int], params: SamplingParams):
        """Validate (errors become HTTP 400s before any response starts), then open the stream."""
        try:
            if hasattr(engine, "validate"):
                engine.validate(prompt_ids, params)
        except EngineError as exc:
            raise from_engine_error(exc)
        return engine.stream(prompt_ids, params)

    async def collect(request: Request, agen, tr) -> dict:
        """Run to the end (or until the tool-calls block closes); cancel if the client leaves."""
        async def run():
            async for out in agen:
                tr.feed(out)
                if tr.done:
                    break

        task = asyncio.ensure_future(run())
        watcher = asyncio.ensure_future(_wait_disconnect(request))
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                task.cancel()
                log.info("client went away; request cancelled")
                raise _ClientGone()
            task.result()
        except EngineError as exc:
            raise from_engine_error(exc)
        finally:
            watcher.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # let the cancellation reach the engine stream
            await _aclose(agen)
        if tr.error:
            raise APIError(tr.error, status=500, type="server_error")
        return tr.completion()

    def stream(agen, tr, include_usage: bool, first_chunk: dict | None) -> StreamingResponse:
        async def body():
            try:
                if first_chunk is not None:
                    yield _sse(first_chunk)
                try:
                    async for out in agen:
                        for chunk in tr.feed(out):
                            yield _sse(chunk)
                        if tr.error:
                            break
                        if tr.done:
                            break
                except EngineError as exc:
                    tr.error = str(exc)
                if tr.error:
                    yield _sse(APIError(tr.error, status=500, type="server_error").body())
                    return
                for chunk in tr.finish():
                    yield _sse(chunk)
                if include_usage:
                    yield _sse(tr.usage_chunk())
                yield "data: [DONE]\n\n"
            finally:
                # Client gone (cancelled here) or tool-calls block closed: stop the engine.
                await _aclose(agen)

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name}

    def model_card() -> dict:
        card = {"id": model_name, "object": "model", "created": started, "owned_by": "lingxi"}
        ctx = _context_length(engine)
        if ctx:
            card["max_model_len"] = ctx
        return card

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        if model_id != model_name:
            raise APIError(f"The model '{model_id}' does not exist; this server serves '{model_name}'.",
                           status=404, param="model", code="model_not_found", type="not_found_error")
        return model_card()

    async def reply(request: Request, req: SamplingRequest, prompt_ids: list[int], max_tokens: int, tr,
                    first_chunk: dict | None, guide=None):
        """Start generating; stream the chunks or return the whole reply (499 if the client left)."""
        params = req.sampling_params(max_tokens)
        params.guide = guide
        agen = start(prompt_ids, params)
        if req.stream:
            return stream(agen, tr, req.include_usage, first_chunk)
        try:
            return await collect(request, agen, tr)
        except _ClientGone:
            return JSONResponse({}, status_code=499)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        req: ChatRequest = await parse(request, ChatRequest)
        messages = [m.to_template() for m in req.messages]
        tools = [t.model_dump(exclude_none=True) for t in req.tools] if req.tools_enabled else None
        try:
            prompt_ids = tokenizer.encode_chat(messages, tools)
        except Exception as exc:  # the template rejected the conversation (jinja raise_exception)
            raise bad_request("messages", f"messages cannot be rendered with this model's chat template: {exc}")
        requested = req.max_completion_tokens or req.max_tokens
        max_tokens = budget(len(prompt_ids), requested, default_max_tokens, "messages")
        tr = ChatTranslator(model=model_name, tools_enabled=req.tools_enabled)
        return await reply(request, req, prompt_ids, max_tokens, tr, tr.first_chunk(), guide_for(engine, messages, tools))

    @app.post("/v1/completions")
    async def completions(request: Request):
        req: CompletionRequest = await parse(request, CompletionRequest)
        prompt_ids = req.prompt if isinstance(req.prompt, list) else tokenizer.encode(req.prompt)
        if not prompt_ids:
            raise bad_request("prompt", "prompt: must not be empty")
        vocab = getattr(tokenizer, "vocab_size", None)
        if isinstance(req.prompt, list) and vocab and any(not 0 <= t < vocab for t in prompt_ids):
            raise bad_request("prompt", f"prompt: token ids must be in [0, {vocab})")
        max_tokens = budget(len(prompt_ids), req.max_tokens, DEFAULT_COMPLETION_MAX_TOKENS, "prompt")
        return await reply(request, req, prompt_ids, max_tokens, CompletionTranslator(model=model_name), None)

    return app


async def _aclose(agen) -> None:
    try:
        await agen.aclose()
    except (Exception, asyncio.CancelledError):  # already closing, or cancelled with the client
        pass
