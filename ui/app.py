"""The Gradio app: a Chat tab and one tab per predictor the server offers."""

from __future__ import annotations

from typing import Any

import gradio as gr

from prompts.library import load_library
from ui.chat import ChatTab
from ui.client import ServerClient
from ui.drift_tab import DriftTab
from ui.predictors import build_predictor, build_scoring, predictor_specs
from ui.settings import UISettings

# System fonts only: the UI must not reach for Google Fonts on an offline machine.
THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
)


def build_app(settings: UISettings) -> gr.Blocks:
    """Build the Blocks; nothing contacts the server until a page loads."""
    client = ServerClient.from_settings(settings)
    with gr.Blocks(title="My LLAMA", analytics_enabled=False) as demo:
        gr.Markdown(f"# My LLAMA\nServer: `{client.base_url}`")
        # Every tab has an elem_id: its button is "#<elem_id>-button", its panel "#<elem_id>".
        with gr.Tabs():
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                chat = ChatTab(
                    client,
                    load_library(),
                    settings.tracking_uri,
                    settings.feedback_experiment,
                    settings.chat_experiment if settings.trace_chats else None,
                )
                chat.build(demo)
            with gr.Tab("Predictors", id="predictors", elem_id="tab-predictors"):
                reload = gr.Button("↻ Reload predictors", size="sm", elem_id="reload-predictors")
                waiting = gr.Markdown(
                    "Asking the server for its predictors…", elem_id="predictors-waiting"
                )
                catalog = gr.State(([], None))

                async def fetch_predictors() -> tuple[
                    tuple[list[dict[str, Any]], str | None], gr.Markdown
                ]:
                    """Ask the server for its predictors; the waiting note goes."""
                    return await predictor_specs(client), gr.Markdown(visible=False)

                demo.load(fetch_predictors, outputs=[catalog, waiting])
                reload.click(fetch_predictors, outputs=[catalog, waiting])

                # Rendered on a change of the catalog only: gr.render's default triggers add the
                # page load, which raced the load's fetch and could build the sub-tabs twice.
                @gr.render(inputs=catalog, triggers=[catalog.change])
                def predictor_tabs(found: tuple[list[dict[str, Any]], str | None]) -> None:
                    """One sub-tab per predictor, rebuilt from the server's schemas."""
                    specs, problem = found
                    if problem:
                        gr.Markdown(problem, elem_id="predictors-status")
                        return
                    with gr.Tabs():
                        for spec in specs:
                            name = str(spec["name"])
                            with gr.Tab(name.title(), id=f"tab-{name}", elem_id=f"tab-{name}"):
                                build_predictor(client, spec)

                build_scoring(client, catalog)

            with gr.Tab("Drift", id="drift", elem_id="tab-drift") as drift_tab:
                DriftTab(settings.tracking_uri, settings.drift_experiment).build(drift_tab)

    return demo
