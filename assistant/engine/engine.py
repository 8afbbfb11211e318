"""LLMEngine: the runtime that serves concurrent requests on one loaded model.

Does: load the checkpoint and tokenizer, and run one background thread that steps the
``Scheduler`` (continuous batching: a prefill for a newly admitted request, else one batched
decode step for every running sequence), samples each sequence's token (``sampler``), turns it
into text deltas with stop strings (``output.TextStream``) and hands ``Output`` records to the
request's ``RequestHandle``. Callers use any thread (``submit`` / ``generate``) or asyncio
(``stream``, bridged with ``loop.call_soon_threadsafe``); leaving ``async for`` early, or
``handle.cancel()``, cancels the request and frees its batch slot and cache at the next step.
``quant="int8"|"int4"`` quantises the linear weights after load (CPU only, see ``quantize_model``);
a checkpoint written by ``engine quantize`` loads quantised as it is.

Does not: render chat templates or parse tool calls (the server does), or page / prefix-share the
KV cache. ``threads`` sets torch's process-wide thread count.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import operator
import queue
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import torch

from .config import EngineConfig, EngineError
from .loader import load_model
from .output import Output, TextStream
from .quantize_model import QUANT_MODES
from .runner import ModelRunner, resolve_device
from .sampler import BadRequest, SamplingParams, sample
from .scheduler import Scheduler, Sequence
from .tokenizer import ChatTokenizer

log = logging.getLogger("lingxi.engine")


class ContextTooLong(EngineError):
    """The prompt (plus ``max_tokens``) does not fit the context; the message names the numbers."""


class EngineClosed(EngineError):
    """``submit`` after ``close()``."""


class RequestHandle:
    """A submitted request. Iterate it (blocking) for its ``Output`` deltas; the last is ``finished``."""

    def __init__(self, engine: "LLMEngine", seq: Sequence, sink: Callable[[Output], None] | None = None):
        self._engine, self._seq, self._sink = engine, seq, sink
        self._queue: queue.Queue[Output] = queue.Queue()
        self.finished = False

    @property
    def request_id(self) -> int:
        return self._seq.seq_id

    def cancel(self) -> None:
        """Ask the engine to stop this request; a final Output with "cancelled" follows."""
        if not self.finished:
            self._engine._cancel(self._seq)

    def _put(self, out: Output) -> None:  # engine thread
        self.finished = self.finished or out.finished
        if self._sink is None:
            self._queue.put(out)
            return
        try:
            self._sink(out)
        except RuntimeError:  # the consumer's event loop is gone: nobody is listening
            self._seq.cancel_requested = True

    def __iter__(self):
        while True:
            out = self._queue.get()
            yield out
            if out.finished:
                return


class LLMEngine:
    """See the module docstring."""

    def __init__(self, model_dir: str | Path, *, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu", quant: str | None = None, max_batch: int = 8,
                 max_context: int | None = None, threads: int | None = None):
        quant = None if quant in (None, "none") else quant
        if quant is not None and quant not in QUANT_MODES:
            raise EngineError(f"unknown quant={quant!r}: use one of {', '.join(QUANT_MODES)} or None")
        if threads:
            torch.set_num_threads(int(threads))
        self.device = resolve_device(device)
        if quant is not None and self.device.type != "cpu":
            raise EngineError(f"quant={quant!r} runs on the CPU only; use device='cpu'")
        model = load_model(model_dir, dtype, quant)
        self.quant = model.quant  # also set for a checkpoint quantised on disk (``engine quantize``)
        if self.quant is not None and self.device.type != "cpu":
            raise EngineError(f"{model_dir} is quantised ({self.quant}), which runs on the CPU only; use device='cpu'")
        self.config: EngineConfig = model.cfg
        self.tokenizer = ChatTokenizer.from_dir(model_dir)
        self.model_name = Path(model_dir).resolve().name
        self.max_context = int(max_context or self.config.max_position_embeddings)
        eos = self.config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_token_ids = frozenset(self.tokenizer.stop_token_ids | {i for i in eos if isinstance(i, int)})
        self.runner = ModelRunner(model, self.device)
        self.scheduler = Scheduler(max_batch)
        self._cond = threading.Condition()
        self._inbox: list[tuple[Sequence, RequestHandle]] = []
        self._live: dict[int, tuple[Sequence, RequestHandle, TextStream]] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="lingxi-engine", daemon=True)
        self._thread.start()

    @functools.cached_property
    def guide_vocab(self):
        """The tokenizer's table for ``copyguide`` (built on first use)."""
        from .copyguide import GuideVocab

        return GuideVocab.of(self.tokenizer)

    # ------------------------------------------------------------------ public API
    def validate(self, prompt_ids: list[int], params: SamplingParams) -> None:
        """Raise ``ContextTooLong`` / ``BadRequest`` for a request the engine would refuse."""
        params.validate()
        n, ctx = len(prompt_ids), self.max_context
        if n == 0:
            raise BadRequest("the prompt is empty: at least one token is needed")
        vocab = self.config.vocab_size
        if any(not isinstance(t, int) or not 0 <= t < vocab for t in prompt_ids):
            raise BadRequest(f"prompt token ids must be ints in [0, {vocab})")
        if n >= ctx:
            raise ContextTooLong(f"the prompt has {n} tokens but the context is {ctx} tokens "
                                 "(at least one token must be left to generate)")
        if n + params.max_tokens > ctx:
            raise ContextTooLong(f"the prompt has {n} tokens and max_tokens is {params.max_tokens}: "
                                 f"{n + params.max_tokens} tokens exceed the context of {ctx}; "
                                 f"lower max_tokens to at most {ctx - n} or shorten the prompt")

    def submit(self, prompt_ids: list[int], params: SamplingParams | None = None, *,
               _sink: Callable[[Output], None] | None = None) -> RequestHandle:
        """Queue a request (thread-safe). Raises ``ContextTooLong`` / ``BadRequest`` / ``EngineClosed``."""
        params = dataclasses.replace(params or SamplingParams())
        params.stop = [params.stop] if isinstance(params.stop, str) else list(params.stop)
        try:
            prompt_ids = [operator.index(t) for t in prompt_ids]
        except TypeError as exc:
            raise BadRequest(f"prompt token ids must be ints: {exc}") from exc
        self.validate(prompt_ids, params)
        stop_ids = frozenset(params.stop_token_ids)
        if not params.ignore_eos:
            stop_ids |= self.eos_token_ids
        seq = Sequence(prompt_ids, params, stop_ids=stop_ids)
        handle = RequestHandle(self, seq, _sink)
        with self._cond:
            if self._closed:
                raise EngineClosed("the engine is closed")
            self._inbox.append((seq, handle))
            self._cond.notify_all()
        return handle

    def generate(self, prompt_ids: list[int], params: SamplingParams | None = None) -> Output:
        """Blocking: the whole text and all token ids of one request."""
        handle = self.submit(prompt_ids, params)
        texts, ids, last = [], [], None
        try:
            for out in handle:
                texts.append(out.text)
                ids.extend(out.token_ids)
                last = out
        finally:
            handle.cancel()  # no-op when finished; else (e.g. KeyboardInterrupt) free the slot
        return dataclasses.replace(last, text="".join(texts), token_ids=ids)

    async def stream(self, prompt_ids: list[int], params: SamplingParams | None = None
                     ) -> AsyncIterator[Output]:
        """Async deltas of one request; stopping iteration early (aclose / CancelledError) cancels it.

        Validation errors are raised at the first ``__anext__``; call ``validate`` first to
        report them before a response starts.
        """
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue[Output] = asyncio.Queue()
        handle = self.submit(prompt_ids, params,
                             _sink=lambda out: loop.call_soon_threadsafe(outputs.put_nowait, out))
        try:
            while True:
                out = await outputs.get()
                yield out
                if out.finished:
                    return
        finally:
            handle.cancel()

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the engine thread (running requests end "cancelled") and join it. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> "LLMEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ engine thread
    def _cancel(self, seq: Sequence) -> None:
        with self._cond:
            seq.cancel_requested = True
            self._cond.notify_all()

    def _loop(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # a bug: end every request rather than leave callers hanging
            with self._cond:
                self._closed = True
                new, self._inbox = self._inbox, []
            crash = f"engine thread crashed: {type(exc).__name__}: {exc}"
            for seq, handle in [*new, *((q, h) for q, h, _ in self._live.values())]:
                handle._put(Output("", [], True, "error", len(seq.prompt_ids), len(seq.output_ids), crash))
            log.exception("engine thread crashed")

    def _run(self) -> None:
        sched = self.scheduler
        while True:
            with self._cond:
                while not (self._closed or self._inbox or sched.has_work()):
                    self._cond.wait()
                if self._closed:
                    break
                new, self._inbox = self._inbox, []
            for seq, handle in new:
                text = TextStream(self.tokenizer, seq.params.stop, seq.stop_ids)
                self._live[seq.seq_id] = (seq, handle, text)
                sched.add(seq)
            for seq in sched.reap_cancelled():
                self._emit(seq, None)
            try:
                self._step()
            except Exception as exc:  # never let the thread die: fail the running requests
                for seq in sched.abort_all("error", f"{type(exc).__name__}: {exc}"):
                    self._emit(seq, None)
        with self._cond:
            new, self._inbox = self._inbox, []
        for seq, handle in new:
            self._live[seq.seq_id] = (seq, handle, TextStream(self.tokenizer, [], seq.stop_ids))
            sched.add(seq)
        for seq in sched.abort_all("cancelled", "engine closed"):
            self._emit(seq, None)

    def _step(self) -> None:
        kind, seqs = self.scheduler.schedule()
        if kind == "prefill":
            seq = seqs[0]
            # Room for the prompt and some output; the cache doubles beyond that, so a huge
            # max_tokens does not reserve memory it may never use.
            seq.cache = self.runner.new_cache(len(seq.prompt_ids) + min(seq.params.max_tokens, 256))
            seq.generator = seq.params.make_generator()
            run = lambda: self.runner.prefill(seq.prompt_ids, seq.cache)[None]
        elif kind == "decode":
            run = lambda: self.runner.decode([s.last_token for s in seqs], [s.cache for s in seqs])
        else:
            return
        try:
            logits = run()
        except Exception as exc:  # fail this step's sequences, keep serving the others
            for seq in seqs:
                self.scheduler.finish(seq, "error", f"{type(exc).__name__}: {exc}")
                self._emit(seq, None)
            return
        for seq, row in zip(seqs, logits):
            try:
                token = sample(row, seq.prompt_ids, seq.output_ids, seq.params, seq.generator)
            except Exception as exc:  # e.g. NaN logits: this sequence only
                self.scheduler.finish(seq, "error", f"sampling failed: {type(exc).__name__}: {exc}")
                self._emit(seq, None)
                continue
            self.scheduler.append(seq, token)
            self._emit(seq, token)

    def _emit(self, seq: Sequence, token: int | None) -> None:
        """Send one Output for ``seq`` (its new ``token``, or a final record after cancel / error)."""
        entry = self._live.get(seq.seq_id)
        if entry is None:
            return
        _, handle, text = entry
        delta = ""
        if token is not None:
            delta, hit_stop = text.step(token)
            if hit_stop and not seq.finished:
                self.scheduler.finish(seq, "stop")
            elif hit_stop and seq.finish_reason == "length":
                seq.finish_reason = "stop"  # the last allowed token completed a stop string
        if seq.finished:
            delta += text.finish()
            del self._live[seq.seq_id]
        handle._put(Output(
            text=delta, token_ids=[] if token is None else [token], finished=seq.finished,
            finish_reason=seq.finish_reason, prompt_tokens=len(seq.prompt_ids),
            completion_tokens=len(seq.output_ids), error=seq.error,
        ))
