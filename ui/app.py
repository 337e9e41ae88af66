"""The Gradio app: a Chat tab and one tab per predictor the server offers."""

from __future__ import annotations

from typing import Any

import gradio as gr

from prompts.library import load_library
from ui.chat import ChatTab
from ui.client import ServerClient
from ui.predictors import build_predictor, predictor_specs
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
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                ChatTab(client, load_library()).build(demo)
            with gr.Tab("Predictors", id="predictors"):
                reload = gr.Button("↻ Reload predictors", size="sm", elem_id="reload-predictors")
                catalog = gr.State(([], "Asking the server for its predictors…"))

                async def fetch_predictors() -> tuple[list[dict[str, Any]], str | None]:
                    """Ask the server for its predictors."""
                    return await predictor_specs(client)

                demo.load(fetch_predictors, outputs=catalog)
                reload.click(fetch_predictors, outputs=catalog)

                @gr.render(inputs=catalog)
                def predictor_tabs(found: tuple[list[dict[str, Any]], str | None]) -> None:
                    """One sub-tab per predictor, rebuilt from the server's schemas."""
                    specs, problem = found
                    if problem:
                        gr.Markdown(problem, elem_id="predictors-status")
                        return
                    with gr.Tabs():
                        for spec in specs:
                            with gr.Tab(str(spec["name"]).title(), id=f"tab-{spec['name']}"):
                                build_predictor(client, spec)

    return demo
