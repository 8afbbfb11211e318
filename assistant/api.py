"""The owner-side HTTP API: chat over SSE, conversations, health.

``POST /api/chat`` validates and stores the user's message, then streams the
agent's events as ``text/event-stream``; each event is one JSON object with a
``type`` (delta, reasoning, tool_call, tool_result, citation, usage, error,
retry, done). A client that disconnects stops the reply; what was streamed is
kept. Authentication of these routes is not done here (see the widget and
owner-login features).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from assistant import conversations as convs
from assistant.agent import InputError
from assistant.services import Lingxi
from assistant.streaming import Event

router = APIRouter()


class ChatRequest(BaseModel):
    message: str | None = None
    conversation_id: str | None = None
    profile: str = "owner"
    retry: bool = Field(default=False, description="answer the last unanswered turn again; message must be empty")


class RenameRequest(BaseModel):
    title: str


def lingxi_of(request: Request) -> Lingxi:
    return request.app.state.lingxi


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def sse(event: Event) -> str:
    return f"data: {json.dumps({'type': event.type, **event.data}, ensure_ascii=False)}\n\n"


@router.post("/api/chat")
async def chat(body: ChatRequest, request: Request):
    lingxi = lingxi_of(request)
    if body.profile not in lingxi.registry.profiles:
        return error_response(400, "bad_profile", f"unknown profile {body.profile!r}")
    if body.retry and body.message:
        return error_response(400, "bad_request", "send either a message or retry, not both")
    if not body.retry and body.message is None:
        return error_response(400, "empty", "The message is empty.")
    try:
        cid = lingxi.agent.start(
            message=None if body.retry else body.message, conversation_id=body.conversation_id, profile=body.profile
        )
    except InputError as exc:
        return error_response(404 if exc.code == "not_found" else 400, exc.code, str(exc))

    async def stream() -> AsyncIterator[str]:
        async for event in lingxi.reply(cid, profile=body.profile):
            yield sse(event)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Conversation-Id": cid}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.post("/api/conversations/{conversation_id}/stop")
def stop(conversation_id: str, request: Request):
    return {"stopped": lingxi_of(request).runs.stop(conversation_id)}


@router.get("/api/conversations")
def list_conversations(request: Request, search: str = "", profile: str | None = None):
    with lingxi_of(request).db.session() as session:
        return {"conversations": [convs.summary(c) for c in convs.list_all(session=session, search=search, profile=profile)]}


@router.get("/api/conversations/{conversation_id}")
def get_conversation(conversation_id: str, request: Request):
    with lingxi_of(request).db.session() as session:
        try:
            conv = convs.get(conversation_id, session=session)
        except convs.NotFound:
            raise HTTPException(404, "no such conversation") from None
        return {
            **convs.summary(conv),
            "messages": [convs.as_dict(m) for m in convs.messages(conv.id, session=session)],
        }


@router.patch("/api/conversations/{conversation_id}")
def rename_conversation(conversation_id: str, body: RenameRequest, request: Request):
    with lingxi_of(request).db.session() as session:
        try:
            return convs.summary(convs.rename(conversation_id, body.title, session=session))
        except convs.NotFound:
            raise HTTPException(404, "no such conversation") from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None


@router.delete("/api/conversations/{conversation_id}", status_code=204)
def delete_conversation(conversation_id: str, request: Request):
    lingxi = lingxi_of(request)
    lingxi.runs.stop(conversation_id)
    with lingxi.db.session() as session:
        try:
            convs.remove(conversation_id, session=session)
        except convs.NotFound:
            raise HTTPException(404, "no such conversation") from None


@router.get("/healthz")
def healthz(request: Request):
    lingxi = lingxi_of(request)
    try:
        with lingxi.db.session() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # report, don't crash the probe
        return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
    return {"status": "ok", "database": "ok", "model": lingxi.settings.llm_model}
