"""DeepSeek-V3 tool calls: the markers, describing tools to the model, rendering calls.

What it does:
  * ``tools_system_prompt`` / ``inject_tools``: the official DeepSeek-V3 chat template does
    not render tool definitions, so the server describes OpenAI-style tools (JSON schema)
    in text merged into the system prompt, including the exact call format.
  * ``render_tool_calls``: OpenAI ``tool_calls`` -> the DeepSeek-V3 text block.

What it does not do: parse calls out of generated text (toolcall_parser.py, incrementally,
for streaming) or decode token ids (tokenizer.py).
"""
from __future__ import annotations

import json
from typing import Iterable

CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
TOOL_SEP = "<｜tool▁sep｜>"
OUTPUTS_BEGIN = "<｜tool▁outputs▁begin｜>"
OUTPUTS_END = "<｜tool▁outputs▁end｜>"
OUTPUT_BEGIN = "<｜tool▁output▁begin｜>"
OUTPUT_END = "<｜tool▁output▁end｜>"
ARGS_OPEN = "\n```json\n"  # between a call's tool name and its arguments
ARGS_CLOSE = "\n```"         # between the arguments and CALL_END


# ---------------------------------------------------------------- tool definitions

def function_of(tool: dict) -> dict:
    # Accept the OpenAI shape {"type": "function", "function": {...}} and a bare {...}.
    fn = tool.get("function", tool) if isinstance(tool, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise ValueError(f"tool definition without a function name: {tool!r}")
    return fn


def tools_system_prompt(tools: Iterable[dict]) -> str:
    """Describe ``tools`` and the exact DeepSeek-V3 call format as system-prompt text."""
    parts = ["## Tools", "You have access to the following tools:", ""]
    for tool in tools:
        fn = function_of(tool)
        parts.append(f"### {fn['name']}")
        if fn.get("description"):
            parts.append(f"Description: {fn['description']}")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        # ensure_ascii=False keeps Chinese descriptions readable (and far fewer tokens).
        parts.append("Parameters: " + json.dumps(params, ensure_ascii=False))
        parts.append("")
    example = (
        f"{CALLS_BEGIN}{CALL_BEGIN}function{TOOL_SEP}TOOL_NAME{ARGS_OPEN}"
        '{"argument": "value"}' + f"{ARGS_CLOSE}{CALL_END}{CALLS_END}"
    )
    parts += [
        "## How to call tools",
        "To call a tool, write the special markers exactly as shown, then stop:",
        example,
        # Several calls share one block; said explicitly because ToolCallParser ends the
        # turn at the first closing marker, so calls in a second block would be lost.
        f"To make several calls at once, put each {CALL_BEGIN}...{CALL_END} one after"
        f" another, separated by a newline, inside the single {CALLS_BEGIN}...{CALLS_END}"
        " block.",
        "The arguments must be one JSON object that matches the tool's parameters.",
        "Only call the tools listed above; if none is needed, answer directly. Results come"
        f" back between {OUTPUTS_BEGIN} and {OUTPUTS_END}; then answer in the user's language.",
    ]
    return "\n".join(parts)


def text_of(content) -> str:
    # OpenAI content may be a list of parts; only text parts mean anything here.
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def inject_tools(messages: list[dict], tools: Iterable[dict] | None) -> list[dict]:
    """Return new messages with the tools prompt merged into the first system message.

    Without tools the messages come back unchanged (as a new list).  The input list and
    its dicts are never mutated.
    """
    messages = list(messages)
    tools = list(tools or [])
    if not tools:
        return messages
    prompt = tools_system_prompt(tools)  # validates before anything is copied
    for i, m in enumerate(messages):
        if m.get("role") == "system":
            text = text_of(m.get("content"))
            messages[i] = {**m, "content": f"{text}\n\n{prompt}" if text else prompt}
            return messages
    return [{"role": "system", "content": prompt}, *messages]


def render_tool_calls(calls: Iterable[dict]) -> str:
    """OpenAI ``tool_calls`` (dicts with ``function.name/arguments``) -> DeepSeek-V3 text."""
    rendered = []
    for call in calls:
        fn = call["function"]
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = json.dumps(args if args is not None else {}, ensure_ascii=False)
        rendered.append(f"{CALL_BEGIN}{call.get('type') or 'function'}{TOOL_SEP}{fn['name']}"
                        f"{ARGS_OPEN}{args}{ARGS_CLOSE}{CALL_END}")
    return CALLS_BEGIN + "\n".join(rendered) + CALLS_END
