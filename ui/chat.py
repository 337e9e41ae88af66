"""The Chat tab: streaming answers, retry/undo/edit/copy/like, saved conversations, Stop, traces."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, suppress
from typing import Any, TypeVar

import gradio as gr

from prompts.library import SystemPrompt
from ui import conversations, traces
from ui.client import AnswerStats, ModelCard, ServerClient
from ui.errors import UserFacingError
from ui.history import fit_history
from ui.model_panel import describe

log = logging.getLogger(__name__)
NO_PROMPT = "(none: free text)"
UPDATE_EVERY_S = 0.05  # the growing answer goes to the page at most this often
TRACES_KEPT = 1000  # answers whose trace a like can still find (the newest)
MODEL_FACTS = ("file_name", "file_sha256", "description")  # from the server's model card
Message = dict[str, str]
STOPPED = "**Stopped:** the request to the server was closed."
_END = object()  # the stream ended (or raised: its pump task holds the error)
T = TypeVar("T")


def _index(index: int | tuple[int, int]) -> int:
    """A message index from an event (Gradio gives a pair for some layouts)."""
    return index[0] if isinstance(index, tuple | list) else int(index)


def _text(value: Any) -> str:
    """The text of an edited message (a string, or Gradio's content blocks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("text", value.get("content", "")))
    return str(value)


def last_exchange(history: list[Message]) -> tuple[list[Message], str]:
    """The history before the last user message, and that message (as gr.ChatInterface pops)."""
    i = len(history) - 1
    while i >= 0 and history[i]["role"] == "assistant":
        i -= 1
    if i < 0:
        return history, ""
    return history[:i], history[i]["content"]


async def until_stopped(
    stream: AsyncGenerator[T, None], stopped: asyncio.Event
) -> AsyncGenerator[T, None]:
    """The stream's items until `stopped` is set; then it is closed at once, even mid-wait.

    A task of its own reads (and closes) the stream, so Stop needs no piece to arrive: a
    request still queued at the server is closed as promptly as a streaming one.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def pump() -> None:
        async with aclosing(stream) as items:
            async for item in items:
                queue.put_nowait(item)

    pumping = asyncio.create_task(pump(), name="chat stream")
    pumping.add_done_callback(lambda _: queue.put_nowait(_END))
    stopping = asyncio.create_task(stopped.wait())
    getting: asyncio.Task[Any] | None = None
    try:
        while True:
            getting = asyncio.create_task(queue.get())
            await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                return
            item = getting.result()
            if item is _END:
                if not pumping.cancelled():
                    pumping.result()  # the stream's error, if it raised
                return
            yield item
    finally:
        for task in (getting, stopping, pumping):
            if task is not None:
                task.cancel()
        with suppress(asyncio.CancelledError):
            await pumping


def _file_facts(card: ModelCard) -> dict[str, Any]:
    """The GGUF's name, hash and type as the server's model card gives them."""
    return {k: v for k, v in card.meta.items() if k in MODEL_FACTS}


def _pick(cards: list[ModelCard], wanted: str | None) -> ModelCard:
    """The chosen model, or the server's first one."""
    if not cards:
        raise UserFacingError("The server offers no models.")
    return next((c for c in cards if c.id == wanted), cards[0])


class ChatTab:
    """Builds the chat components and holds the client its handlers use."""

    def __init__(
        self,
        client: ServerClient,
        library: dict[str, SystemPrompt],
        tracking_uri: str = "sqlite:///mlflow.db",
        feedback_experiment: str = "myllama-chat-feedback",
        chat_experiment: str | None = None,
    ) -> None:
        self.client = client
        self.library = library
        self.tracking_uri = tracking_uri
        self.feedback_experiment = feedback_experiment
        self.chat_experiment = chat_experiment  # set: every answer becomes a trace there
        self._running: dict[str, set[asyncio.Event]] = {}  # browser session → its answers' Stop
        # (session, answer) → its trace being written: a like attaches to that trace
        self._traced: OrderedDict[tuple[str, str], asyncio.Task[str | None]] = OrderedDict()

    async def stop(self, request: gr.Request) -> None:
        """Stop the session's running answers: each closes its request and says it stopped."""
        for stopped in self._running.get(request.session_hash or "", ()):
            stopped.set()

    async def server_state(self, current: str | None) -> tuple[Any, str, str]:
        """Model choices, a status line and the model panel, fetched now (the server may be up)."""
        try:
            cards = await self.client.models()
            running = await self.client.running_requests()
        except UserFacingError as problem:
            return gr.update(), f"**Not connected.** {problem.message}", describe(None)
        ids = [c.id for c in cards]
        value = current if current in ids else (ids[0] if ids else None)
        busy = sum(running.values())
        status = (
            f"**Connected** to {self.client.base_url} · {len(ids)} model(s) · "
            f"{busy:.0f} request(s) running"
        )
        panel = describe(next((c for c in cards if c.id == value), None))
        return gr.update(choices=ids, value=value), status, panel

    async def model_panel(self, model: str | None) -> str:
        """The panel of the chosen model."""
        try:
            cards = await self.client.models()
        except UserFacingError as problem:
            return f"**Not connected.** {problem.message}"
        return describe(next((c for c in cards if c.id == model), None))

    def choose_prompt(self, name: str) -> tuple[str, str]:
        """Fill the system-prompt text and description from the library."""
        prompt = self.library.get(name)
        if prompt is None:
            return "", "Write any system prompt below, or leave it empty."
        return prompt.text, f"*{prompt.description}* (version `{prompt.version}`)"

    async def respond(
        self,
        message: str,
        history: list[Message],
        model: str | None,
        system: str,
        temperature: float,
        top_p: float,
        max_tokens: float,
        request: gr.Request,
    ) -> AsyncIterator[tuple[list[Message], list[Message], str, str]]:
        """Stream one answer; yields (chatbot, history, input box, stats line).

        Stop ends it from inside: its last update keeps the partial answer (or, with none yet,
        puts the message back in the box) and says it was stopped, so no earlier piece can
        land after that note.
        """
        message = message.strip()
        if not message:
            yield history, history, "", "Type a message first."
            return
        stopped = asyncio.Event()
        running = self._running.setdefault(request.session_hash or "", set())
        running.add(stopped)
        try:
            async for update in self._answer(
                message,
                history,
                model,
                system,
                stopped,
                request,
                temperature=temperature,
                top_p=top_p,
                max_tokens=int(max_tokens),
            ):
                yield update
        finally:
            running.discard(stopped)

    async def _answer(
        self,
        message: str,
        history: list[Message],
        model: str | None,
        system: str,
        stopped: asyncio.Event,
        request: gr.Request,
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
    ) -> AsyncIterator[tuple[list[Message], list[Message], str, str]]:
        """The updates of one answer, until it ends, fails or `stopped` is set."""
        answer = ""
        shown = history
        finished = False
        try:
            card = _pick(await self.client.models(), model)
            fitted = fit_history(system, history, message, card.n_ctx, max_tokens)
            note = f" · {fitted.dropped} older message(s) left out to fit the context"
            note = note if fitted.dropped else ""
            shown = [*history, {"role": "user", "content": message}]
            yield [*shown, {"role": "assistant", "content": "…"}], history, "", "Thinking…"
            stream = self.client.chat(
                card.id,
                fitted.messages,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_tokens,
            )
            shown_at = 0.0  # when the page last got the growing answer
            sent_ns = time.time_ns()
            async with aclosing(until_stopped(stream, stopped)) as pieces:
                async for piece in pieces:
                    if isinstance(piece, AnswerStats):
                        finished = True
                        done = [*shown, {"role": "assistant", "content": answer}]
                        if self.chat_experiment is not None:
                            exchange = traces.Exchange(
                                model=card.id,
                                messages=fitted.messages,
                                answer=answer,
                                user=request.username or "anonymous",
                                session=request.session_hash or "",
                                meta=_file_facts(card),
                                figures=piece.figures(),
                                span_ns=(sent_ns, sent_ns + int(piece.e2e * 1e9)),
                            )
                            self._trace_in_background(request, self.chat_experiment, exchange)
                        yield done, done, "", f"{card.id} · {piece.line()}{note}"
                    else:
                        answer += piece
                        # Each update costs Gradio a full round (the stream waits meanwhile):
                        # one per token held a 110 tok/s server to 3-7 tok/s in the page.
                        if time.monotonic() - shown_at < UPDATE_EVERY_S:
                            continue
                        shown_at = time.monotonic()
                        partial = [*shown, {"role": "assistant", "content": answer}]
                        yield partial, partial, "", f"{card.id} · streaming…"
        except UserFacingError as problem:
            if answer:
                kept = [*shown, {"role": "assistant", "content": answer}]
                yield kept, kept, "", f"**Error:** {problem.message}"
            else:
                yield history, history, message, f"**Error:** {problem.message}"
            return
        if stopped.is_set() and not finished:
            if answer:
                kept = [*shown, {"role": "assistant", "content": answer}]
                yield kept, kept, "", STOPPED
            else:
                yield history, history, message, STOPPED

    async def retry(
        self,
        data: gr.RetryData,
        history: list[Message],
        model: str | None,
        system: str,
        temperature: float,
        top_p: float,
        max_tokens: float,
        request: gr.Request,
    ) -> AsyncIterator[tuple[list[Message], list[Message], str, str]]:
        """Answer the last question again, in place of its answer (as gr.ChatInterface does)."""
        del data  # the last exchange is the one retried, whichever answer's button it was
        kept, question = last_exchange(history)
        settings = (model, system, temperature, top_p, max_tokens)
        async for update in self.respond(question, kept, *settings, request=request):
            yield update

    async def edit(
        self,
        data: gr.EditData,
        history: list[Message],
        model: str | None,
        system: str,
        temperature: float,
        top_p: float,
        max_tokens: float,
        request: gr.Request,
    ) -> AsyncIterator[tuple[list[Message], list[Message], str, str]]:
        """Send the edited user message in place of the old one; what followed it goes."""
        index = _index(data.index)
        settings = (model, system, temperature, top_p, max_tokens)
        async for update in self.respond(
            _text(data.value), history[:index], *settings, request=request
        ):
            yield update

    @staticmethod
    def undo(
        data: gr.UndoData, history: list[Message]
    ) -> tuple[list[Message], list[Message], str, str]:
        """Drop the last exchange; its question goes back into the input box."""
        del data
        kept, question = last_exchange(history)
        return kept, kept, question, ""

    def _trace_in_background(
        self, request: gr.Request, experiment: str, exchange: traces.Exchange
    ) -> None:
        """Write the answer's trace without holding up the chat; a like finds it by its text."""
        task = asyncio.create_task(self._write(experiment, exchange), name="chat trace")
        self._traced[(request.session_hash or "", exchange.answer)] = task
        while len(self._traced) > TRACES_KEPT:
            self._traced.popitem(last=False)

    async def _write(self, experiment: str, exchange: traces.Exchange) -> str | None:
        """The chat trace's id, or None if the store refused it (logged: the chat goes on)."""
        try:
            return await asyncio.to_thread(
                traces.trace, self.tracking_uri, experiment, exchange, traces.CHAT
            )
        except Exception as exc:  # a store the UI cannot write to must not break the chat
            log.warning("chat trace not recorded: %s", exc)
            return None

    async def _model_facts(self, model: str | None) -> dict[str, Any]:
        """Which file answers for the model now: the GGUF's name, hash and type ({} if unknown)."""
        try:
            card = next((c for c in await self.client.models() if c.id == model), None)
        except UserFacingError:
            return {}
        return _file_facts(card) if card is not None else {}

    async def like(
        self,
        data: gr.LikeData,
        history: list[Message],
        model: str | None,
        request: gr.Request,
    ) -> str:
        """Record a like or dislike of one answer in MLflow; the stats line says where.

        An answer traced with --trace-chats gets the verdict on its own trace; any other is
        written as a trace of the exchange in the feedback experiment first.
        """
        index = _index(data.index)
        if data.liked not in (True, False) or not 0 <= index < len(history):
            return "Feedback withdrawn in the page (what was recorded stays in MLflow)."
        answer = history[index]["content"]
        user = request.username or "anonymous"
        traced = self._traced.get((request.session_hash or "", answer))
        trace_id = await traced if traced is not None else None
        # a traced answer's trace is in the chat experiment; any other gets one in the feedback one
        experiment = self.chat_experiment if trace_id is not None else None
        experiment = experiment or self.feedback_experiment
        try:
            if trace_id is None:
                exchange = traces.Exchange(
                    model=model or "?",
                    messages=history[:index],
                    answer=answer,
                    user=user,
                    session=request.session_hash or "",
                    meta=await self._model_facts(model),
                )
                trace_id = await asyncio.to_thread(
                    traces.trace, self.tracking_uri, experiment, exchange, traces.RATED
                )
            await asyncio.to_thread(
                traces.rate, self.tracking_uri, trace_id, bool(data.liked), user
            )
        except Exception as exc:  # a store the UI cannot write to must not break the chat
            log.warning("feedback not recorded: %s", exc)
            return f"**Feedback not recorded:** {exc}"
        verdict = "Like" if data.liked else "Dislike"
        return f"{verdict} recorded in MLflow (experiment `{experiment}`, trace `{trace_id}`)"

    @staticmethod
    def remember(
        history: list[Message], saved: conversations.Saved, current: int | None
    ) -> tuple[conversations.Saved, int | None, Any]:
        """Save the conversation in the browser's list (newest first)."""
        saved, current = conversations.save(saved, current, history)
        return saved, current, gr.Dataset(samples=conversations.listing(saved))

    @staticmethod
    def reopen(
        index: int, saved: conversations.Saved
    ) -> tuple[list[Message], list[Message], int | None, str]:
        """Open a saved conversation to read or continue it."""
        messages = conversations.opened(saved, index)
        return messages, messages, index if messages else None, ""

    def build(self, demo: gr.Blocks) -> None:
        """Lay out the tab inside the current Blocks and wire its events."""
        history = gr.State([])
        saved = gr.BrowserState([], storage_key="myllama-conversations")
        current = gr.State(None)  # index of the open conversation in `saved`, None: a new one
        with gr.Row(equal_height=True):
            model = gr.Dropdown(label="Model", choices=[], scale=3, elem_id="model-picker")
            refresh = gr.Button("↻ Check server", scale=1, elem_id="refresh-server")
        status = gr.Markdown("Checking the server…", elem_id="server-status")
        with gr.Accordion("Model details", open=True):
            panel = gr.Markdown(describe(None), elem_id="model-panel")
        with gr.Row():
            with gr.Column(scale=1, min_width=180):
                new = gr.Button("+ New chat", elem_id="new-chat")
                listed = gr.Dataset(
                    components=[gr.Textbox(visible=False)],
                    samples=[],
                    type="index",
                    label="Saved conversations (this browser)",
                    elem_id="saved-chats",
                )
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    height=440,
                    elem_id="chatbot",
                    editable="user",
                    buttons=["copy", "copy_all"],
                )
                box = gr.Textbox(
                    placeholder="Ask something and press Enter",
                    show_label=False,
                    lines=1,
                    max_lines=6,
                    elem_id="chat-input",
                )
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                    clear = gr.Button("Clear chat", elem_id="clear")
                stats = gr.Markdown("", elem_id="chat-stats")
            with gr.Column(scale=2):
                names = [NO_PROMPT, *self.library]
                pick = gr.Dropdown(label="System prompt (library)", choices=names, value=NO_PROMPT)
                about = gr.Markdown(self.choose_prompt(NO_PROMPT)[1])
                system = gr.Textbox(label="System prompt", lines=6, elem_id="system-prompt")
                temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature")
                top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p")
                max_tokens = gr.Slider(16, 2048, value=256, step=16, label="Max tokens")

        pick.change(self.choose_prompt, inputs=pick, outputs=[system, about])
        refresh.click(self.server_state, inputs=model, outputs=[model, status, panel])
        model.change(self.model_panel, inputs=model, outputs=panel)
        settings = [model, system, temperature, top_p, max_tokens]
        outputs = [chatbot, history, box, stats]
        memory: dict[str, Any] = {
            "inputs": [history, saved, current],
            "outputs": [saved, current, listed],
        }
        # show_progress="hidden": the stats line shows progress; and Gradio's tracker would
        # cover the partial answer with an "Error" badge once Stop cancels the stream.
        answer: dict[str, Any] = {
            "outputs": outputs,
            "concurrency_limit": None,
            "show_progress": "hidden",
        }
        runs: list[Any] = [
            trigger(self.respond, inputs=[box, history, *settings], **answer)
            for trigger in (box.submit, send.click)
        ]
        runs.append(chatbot.retry(self.retry, inputs=[history, *settings], **answer))
        runs.append(chatbot.edit(self.edit, inputs=[history, *settings], **answer))
        for run in runs:
            run.then(self.remember, **memory)
        chatbot.undo(self.undo, inputs=history, outputs=outputs, cancels=runs).then(
            self.remember, **memory
        )
        chatbot.like(self.like, inputs=[history, model], outputs=stats)
        stop.click(self.stop)  # each run ends itself, then saves the conversation
        fresh: dict[str, Any] = {"outputs": [chatbot, history, current, stats], "cancels": runs}
        for trigger in (clear.click, new.click, chatbot.clear):
            trigger(lambda: ([], [], None, ""), **fresh)
        listed.click(self.reopen, inputs=[listed, saved], **fresh)
        demo.load(self.server_state, inputs=model, outputs=[model, status, panel])
        gr.on(
            [demo.load, saved.change],
            lambda kept: gr.Dataset(samples=conversations.listing(kept)),
            inputs=saved,
            outputs=listed,
        )
