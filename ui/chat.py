"""The owner's chat page: ``build_ui(lingxi)`` returns the Gradio Blocks for "/".

It streams the agent's replies (reasoning and tool steps as collapsible
messages), stops and retries them, lists, searches, renames and deletes
conversations, shows token usage and cost, says when an offline model is
answering (and how to switch to an API), and lets each browser session pick
the provider URL, model and temperature (the API key never leaves the server).
Labels follow the browser's language through ``ui.i18n.make_i18n()``, which
the caller passes to ``gr.mount_gradio_app(..., i18n=...)``.

Handlers call the services (``Lingxi``, ``assistant.conversations``) and the
pure functions of ``ui.chat_render``; they never query the ORM themselves.
Nothing here is safe to expose to visitors: every event is callable through
``/gradio_api``, so mount this only where the owner is meant to reach it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr

from assistant import conversations as convs
from assistant.agent import InputError
from assistant.owner_auth import COOKIE
from assistant.services import Lingxi
from ui.admin import build_admin_tabs
from ui.chat_render import Step, conversation_choices, fold, history_steps, render, usage_text
from ui.chat_settings import default_prefs, model_choice, model_options, provider_notice, valid_base_url
from ui.i18n import lang_of, make_i18n, text, translate_error
from ui.inbox import build_inbox
from ui.schedule import build_schedule_tabs

PROFILE = "owner"
STOP_WAIT_S = 5.0  # how long "stop" waits for the cancelled reply to be saved


class ChatHandlers:
    """The event handlers, bound to one ``Lingxi``; outputs are documented in ``build_ui``."""

    def __init__(self, lingxi: Lingxi, i18n: gr.I18n):
        self.lingxi = lingxi
        self.i18n = i18n

    # --- Reading through the services ---

    def _summaries(self, search: str) -> list[dict[str, Any]]:
        with self.lingxi.db.session() as s:
            return [convs.summary(c) for c in convs.list_all(session=s, search=search or "", profile=PROFILE)]

    def _load(self, cid: str) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """(messages, usage totals, title); raises ``convs.NotFound``."""
        with self.lingxi.db.session() as s:
            conv = convs.get(cid, session=s, profile=PROFILE)
            msgs = [convs.as_dict(m) for m in convs.messages(cid, session=s)]
            return msgs, convs.totals(conv).as_dict(), conv.title

    def _usage(self, totals: dict[str, Any] | None, lang: str) -> str:
        return usage_text(totals, self.lingxi.settings.llm_price_currency, lang)

    # --- Output groups ---

    def sidebar(self, search: str, cid: str | None, lang: str, *, interactive: bool = True) -> tuple:
        """[conversation list, new, rename, delete, pending delete]: fresh, delete unarmed."""
        choices = conversation_choices(self._summaries(search), lang)
        value = cid if any(v == cid for _, v in choices) else None
        return (
            gr.Radio(choices=choices, value=value, interactive=interactive),
            gr.Button(interactive=interactive),
            gr.Button(interactive=interactive),
            gr.Button(value=self.i18n("delete"), variant="secondary", interactive=interactive),
            None,
        )

    def view(self, cid: str | None, lang: str) -> tuple:
        """[chatbot, conversation id, usage, title] for a stored conversation (or none)."""
        if not cid:
            return [], None, self._usage(None, lang), ""
        msgs, totals, title = self._load(cid)
        return render(history_steps(msgs), lang), cid, self._usage(totals, lang), title

    # --- Events ---

    def on_load(self, search: str, request: gr.Request) -> tuple:
        lang = lang_of(request)
        return (*self.sidebar(search, None, lang), self._usage(None, lang))

    def notice(self, request: gr.Request) -> gr.Markdown:
        """The offline-model notice in the page's language (hidden when a hosted API answers)."""
        message = provider_notice(self.lingxi.settings, lang_of(request))
        return gr.Markdown(value=message, visible=bool(message))

    def select(self, cid: str | None, search: str, request: gr.Request) -> tuple:
        lang = lang_of(request)
        try:
            view = self.view(cid, lang)
        except convs.NotFound:  # deleted in another tab
            view, cid = self.view(None, lang), None
        return (*view, *self.sidebar(search, cid, lang))

    def new_chat(self, search: str, request: gr.Request) -> tuple:
        lang = lang_of(request)
        return (*self.view(None, lang), *self.sidebar(search, None, lang), "")

    def search(self, search: str, cid: str | None, request: gr.Request) -> tuple:
        return self.sidebar(search, cid, lang_of(request))

    def rename(self, cid: str | None, title: str, search: str, request: gr.Request) -> tuple:
        lang = lang_of(request)
        if not cid:
            gr.Warning(text(lang, "nothing_selected"))
        else:
            try:
                with self.lingxi.db.session() as s:
                    convs.rename(cid, title, session=s)
            except ValueError:
                gr.Warning(text(lang, "title_empty"))
            except convs.NotFound:
                cid = None
        return self.sidebar(search, cid, lang)

    def delete(self, cid: str | None, armed: str | None, search: str, request: gr.Request) -> tuple:
        """First click arms the button (it turns red and asks again); the second deletes."""
        lang = lang_of(request)
        keep = (gr.skip(),) * 4
        if not cid:
            gr.Warning(text(lang, "nothing_selected"))
            return (*keep, *self.sidebar(search, cid, lang))
        if self.lingxi.runs.active(cid):
            gr.Warning(text(lang, "busy"))
            return (*keep, *self.sidebar(search, cid, lang))
        if armed != cid:
            confirm = gr.Button(value=self.i18n("confirm_delete"), variant="stop")
            return (*keep, gr.skip(), gr.skip(), gr.skip(), confirm, cid)
        try:
            with self.lingxi.db.session() as s:
                convs.remove(cid, session=s)
        except convs.NotFound:
            pass
        return (*self.view(None, lang), *self.sidebar(search, None, lang))

    def set_prefs(self, base_url: str, model: str, temperature: float, prefs: dict) -> dict:
        # Runs on every keystroke: a half-typed URL keeps the last valid one.
        if not valid_base_url(base_url or ""):
            base_url = prefs.get("base_url", "")
        return {"base_url": base_url.strip(), "model": (model or "").strip(), "temperature": temperature}

    def check_base_url(self, base_url: str, request: gr.Request) -> None:
        if not valid_base_url(base_url or ""):
            gr.Warning(text(lang_of(request), "bad_base_url"))

    async def send(self, message: str, cid: str | None, prefs: dict, search: str, request: gr.Request):
        lang = lang_of(request)
        skip_all = (gr.skip(),) * 10
        if cid and self.lingxi.runs.active(cid):
            gr.Warning(text(lang, "busy"))
            yield skip_all
            return
        try:
            cid = await asyncio.to_thread(
                self.lingxi.agent.start, message=message, conversation_id=cid, profile=PROFILE
            )
        except InputError as exc:
            if exc.code != "empty":  # an empty box needs no message
                gr.Warning(translate_error(exc.code, str(exc), lang))
            yield skip_all
            return
        async for update in self._stream(cid, prefs, search, lang):
            yield ("", *update)  # the box empties once the message is stored

    async def retry(self, cid: str | None, prefs: dict, search: str, request: gr.Request):
        lang = lang_of(request)
        problem = text(lang, "busy") if cid and self.lingxi.runs.active(cid) else None
        if not cid:  # an empty chat: the agent would say "no such conversation"
            problem = text(lang, "error.agent.nothing_to_retry")
        if problem is None:
            try:
                await asyncio.to_thread(self.lingxi.agent.start, message=None, conversation_id=cid, profile=PROFILE)
            except InputError as exc:
                problem = translate_error(exc.code, str(exc), lang)
        if problem is not None:
            gr.Warning(problem)
            yield (gr.skip(),) * 9
            return
        async for update in self._stream(cid, prefs, search, lang):
            yield update

    async def _stream(self, cid: str, prefs: dict, search: str, lang: str) -> AsyncIterator[tuple]:
        """Yield [view..., sidebar...] as the reply streams; the sidebar is locked meanwhile.

        Switching or deleting conversations mid-reply would point this stream
        at the wrong chat, so those controls wait until it ends.
        """
        msgs, totals, title = await asyncio.to_thread(self._load, cid)
        history = history_steps(msgs, answering=True)
        usage = self._usage(totals, lang)
        sidebar = await asyncio.to_thread(self.sidebar, search, cid, lang, interactive=False)
        yield (render(history, lang), cid, usage, title, *sidebar)
        turn: list[Step] = []
        choice = model_choice(prefs, self.lingxi.settings)
        async for event in self.lingxi.reply(cid, profile=PROFILE, choice=choice):
            fold(turn, event)
            if event.type == "usage":
                usage = self._usage(event.data.get("conversation"), lang)
            yield (render(history + turn, lang), gr.skip(), usage, *(gr.skip(),) * 6)

    def stop(self, cid: str | None) -> None:
        # Sets the stop flag; the click also cancels the streaming event, for
        # a reply still waiting on the provider's first byte.
        if cid:
            self.lingxi.runs.stop(cid)

    def unlock(self, cid: str | None, search: str, request: gr.Request) -> tuple:
        """The sidebar, usable again (and with the new title) after a reply ended or failed."""
        return self.sidebar(search, cid, lang_of(request))

    async def after_stop(self, cid: str | None, search: str, request: gr.Request) -> tuple:
        """Reload from storage once the stopped reply was saved, so what was kept is shown."""
        deadline = asyncio.get_running_loop().time() + STOP_WAIT_S
        while cid and self.lingxi.runs.active(cid) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return await asyncio.to_thread(self.select, cid, search, request)


def signed_in(request: gr.Request) -> gr.Button:
    """Show "sign out" when the page came with the owner's session cookie (see assistant.owner_auth)."""
    cookies = request.headers.get("cookie", "") if request else ""
    return gr.Button(visible=any(c.strip().startswith(COOKIE + "=") for c in cookies.split(";")))


def build_ui(lingxi: Lingxi) -> gr.Blocks:
    """The chat page for ``lingxi``, queued with ``settings.ui_concurrency`` workers per event."""
    settings = lingxi.settings
    i18n = make_i18n()
    h = ChatHandlers(lingxi, i18n)
    with gr.Blocks(title="Lingxi 灵犀") as blocks:
        cid = gr.State(None)
        prefs = gr.State(default_prefs(settings))  # per browser session, in server memory
        armed = gr.State(None)  # the conversation the delete button was armed for
        build_inbox(lingxi, blocks, i18n)  # above the tabs: the badge shows on every tab
        # Shown only to a signed-in owner (off loopback); /logout asks before it signs out.
        sign_out = gr.Button(i18n("sign_out"), link="/logout", size="sm", visible=False, elem_id="lingxi-signout")
        with gr.Tabs():
            with gr.Tab(i18n("tab_chat"), elem_id="lingxi-tab-chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=240):
                        new_btn = gr.Button(i18n("new_chat"), variant="primary", elem_id="lingxi-new")
                        search = gr.Textbox(label=i18n("search"), placeholder=i18n("search_placeholder"), max_lines=1)
                        convo_list = gr.Radio(label=i18n("conversations"), choices=[], elem_id="lingxi-conversations")
                        title_box = gr.Textbox(label=i18n("title"), max_lines=1)
                        with gr.Row():
                            rename_btn = gr.Button(i18n("rename"), size="sm")
                            delete_btn = gr.Button(i18n("delete"), size="sm", elem_id="lingxi-delete")
                    with gr.Column(scale=4):
                        # Filled in the page's language on load; shown only while an offline model answers.
                        notice = gr.Markdown(visible=bool(provider_notice(settings, "en")),
                                             elem_id="lingxi-provider-notice")
                        chatbot = gr.Chatbot(
                            label=i18n("chat"), height="62vh", elem_id="lingxi-chat",
                            # No raw HTML from the model or the user: sanitized, no custom tags.
                            sanitize_html=True, allow_tags=False, render_markdown=True, feedback_options=None,
                            buttons=["copy", "copy_all"],
                        )
                        usage = gr.Markdown(elem_id="lingxi-usage")
                        with gr.Row():
                            box = gr.Textbox(
                                show_label=False, placeholder=i18n("message_placeholder"), lines=1, max_lines=8,
                                scale=6, elem_id="lingxi-input",
                            )
                            send_btn = gr.Button(i18n("send"), variant="primary", scale=1, min_width=80,
                                                 elem_id="lingxi-send")
                            stop_btn = gr.Button(i18n("stop"), variant="stop", scale=1, min_width=80,
                                                 elem_id="lingxi-stop")
                            retry_btn = gr.Button(i18n("retry"), scale=1, min_width=80, elem_id="lingxi-retry")
                        with gr.Accordion(i18n("settings"), open=False):
                            base_url = gr.Textbox(label=i18n("base_url"), info=i18n("base_url_info"),
                                                  value=settings.llm_base_url, max_lines=1)
                            model = gr.Dropdown(label=i18n("model"), info=i18n("model_info"),
                                                choices=model_options(settings), value=settings.llm_model,
                                                allow_custom_value=True)
                            temperature = gr.Slider(0.0, 2.0, value=settings.llm_temperature, step=0.05,
                                                    label=i18n("temperature"), info=i18n("temperature_info"))
            build_schedule_tabs(lingxi, blocks, i18n)
            build_admin_tabs(lingxi, blocks, i18n)

        view = [chatbot, cid, usage, title_box]
        sidebar = [convo_list, new_btn, rename_btn, delete_btn, armed]

        blocks.load(h.on_load, [search], [*sidebar, usage])
        blocks.load(signed_in, None, sign_out)
        blocks.load(h.notice, None, notice, show_progress="hidden")
        # Progress shows on the chat only: the locked sidebar needs no spinner.
        send_evt = gr.on([box.submit, send_btn.click], h.send, [box, cid, prefs, search], [box, *view, *sidebar],
                         show_progress_on=[chatbot])
        retry_evt = retry_btn.click(h.retry, [cid, prefs, search], [*view, *sidebar], show_progress_on=[chatbot])
        for evt in (send_evt, retry_evt):
            # Runs even when the stream failed, so the sidebar is never left locked.
            evt.then(h.unlock, [cid, search], sidebar, show_progress="hidden")
        stop_btn.click(h.stop, [cid], None, cancels=[send_evt, retry_evt], show_progress="hidden").then(
            h.after_stop, [cid, search], [*view, *sidebar], show_progress_on=[chatbot]
        )
        convo_list.input(h.select, [convo_list, search], [*view, *sidebar])
        gr.on([new_btn.click, chatbot.clear], h.new_chat, [search], [*view, *sidebar, box])
        search.change(h.search, [search, cid], sidebar, show_progress="hidden")
        rename_btn.click(h.rename, [cid, title_box, search], sidebar)
        delete_btn.click(h.delete, [cid, armed, search], [*view, *sidebar])
        gr.on([base_url.change, model.change, temperature.change], h.set_prefs,
              [base_url, model, temperature, prefs], prefs, show_progress="hidden")
        gr.on([base_url.blur, base_url.submit], h.check_base_url, [base_url], None, show_progress="hidden")

    # Gradio runs one call per event at a time unless told otherwise, which
    # would make every user wait for every other user's reply.
    blocks.queue(default_concurrency_limit=settings.ui_concurrency)
    return blocks
