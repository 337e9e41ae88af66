"""The Chat tab: streaming answers, model and system-prompt pickers, sampling settings, Stop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import gradio as gr

from prompts.library import SystemPrompt
from ui.client import AnswerStats, ModelCard, ServerClient
from ui.errors import UserFacingError
from ui.history import fit_history

NO_PROMPT = "(none: free text)"
Message = dict[str, str]


def _pick(cards: list[ModelCard], wanted: str | None) -> ModelCard:
    """The chosen model, or the server's first one."""
    if not cards:
        raise UserFacingError("The server offers no models.")
    return next((c for c in cards if c.id == wanted), cards[0])


class ChatTab:
    """Builds the chat components and holds the client its handlers use."""

    def __init__(self, client: ServerClient, library: dict[str, SystemPrompt]) -> None:
        self.client = client
        self.library = library
        self._stopped_at: dict[str, float] = {}  # browser session → when it last pressed Stop

    def stop(self, request: gr.Request) -> str:
        """Mark the session's running answer as stopped (it yields nothing more) and say so."""
        self._stopped_at[request.session_hash or ""] = time.monotonic()
        return "**Stopped:** the request to the server was closed."

    def _was_stopped(self, request: gr.Request, since: float) -> bool:
        return self._stopped_at.get(request.session_hash or "", 0.0) >= since

    async def server_state(self, current: str | None) -> tuple[Any, str]:
        """Model choices and a status line, fetched now (the server may have come up since)."""
        try:
            cards = await self.client.models()
            running = await self.client.running_requests()
        except UserFacingError as problem:
            return gr.update(), f"**Not connected.** {problem.message}"
        ids = [c.id for c in cards]
        value = current if current in ids else (ids[0] if ids else None)
        busy = sum(running.values())
        status = (
            f"**Connected** to {self.client.base_url} · {len(ids)} model(s) · "
            f"{busy:.0f} request(s) running"
        )
        return gr.update(choices=ids, value=value), status

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

        Stop cancels this generator, but Gradio runs the Stop handler at the same time: a piece
        could still land after the "Stopped" note, so after Stop nothing more is yielded.
        """
        started = time.monotonic()
        message = message.strip()
        if not message:
            yield history, history, "", "Type a message first."
            return
        answer = ""
        shown = history
        try:
            card = _pick(await self.client.models(), model)
            fitted = fit_history(system, history, message, card.n_ctx, int(max_tokens))
            note = f" · {fitted.dropped} older message(s) left out to fit the context"
            note = note if fitted.dropped else ""
            shown = [*history, {"role": "user", "content": message}]
            yield [*shown, {"role": "assistant", "content": "…"}], history, "", "Thinking…"
            stream = self.client.chat(
                card.id,
                fitted.messages,
                temperature=temperature,
                top_p=top_p,
                max_tokens=int(max_tokens),
            )
            async with aclosing(stream) as pieces:
                async for piece in pieces:
                    if self._was_stopped(request, started):
                        return
                    if isinstance(piece, AnswerStats):
                        done = [*shown, {"role": "assistant", "content": answer}]
                        yield done, done, "", f"{card.id} · {piece.line()}{note}"
                    else:
                        answer += piece
                        partial = [*shown, {"role": "assistant", "content": answer}]
                        yield partial, partial, "", f"{card.id} · streaming…"
        except UserFacingError as problem:
            if answer:
                kept = [*shown, {"role": "assistant", "content": answer}]
                yield kept, kept, "", f"**Error:** {problem.message}"
            else:
                yield history, history, message, f"**Error:** {problem.message}"

    def build(self, demo: gr.Blocks) -> None:
        """Lay out the tab inside the current Blocks and wire its events."""
        history = gr.State([])
        with gr.Row(equal_height=True):
            model = gr.Dropdown(label="Model", choices=[], scale=3, elem_id="model-picker")
            refresh = gr.Button("↻ Check server", scale=1, elem_id="refresh-server")
        status = gr.Markdown("Checking the server…", elem_id="server-status")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=440, elem_id="chatbot")
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
        refresh.click(self.server_state, inputs=model, outputs=[model, status])
        inputs = [box, history, model, system, temperature, top_p, max_tokens]
        outputs = [chatbot, history, box, stats]
        runs: list[dict[str, Any]] = [
            # show_progress="hidden": the stats line shows progress; and Gradio's tracker would
            # cover the partial answer with an "Error" badge once Stop cancels the stream.
            trigger(
                self.respond,
                inputs=inputs,
                outputs=outputs,
                concurrency_limit=None,
                show_progress="hidden",
            )
            for trigger in (box.submit, send.click)
        ]
        stop.click(self.stop, outputs=stats, cancels=runs)
        clear.click(lambda: ([], [], ""), outputs=[chatbot, history, stats], cancels=runs)
        chatbot.clear(lambda: ([], ""), outputs=[history, stats], cancels=runs)
        demo.load(self.server_state, inputs=model, outputs=[model, status])
