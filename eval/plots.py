"""Plots for MLflow and the HTML report (matplotlib, Agg): latency, similarities, columns."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from eval.latency import RequestRecord


def latency_cdfs(levels: dict[int, list[RequestRecord]], path: Path) -> Path:
    """Empirical CDFs of TTFT, TPOT and E2E, one line per concurrency level."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    figures = {
        "TTFT (s)": lambda r: r.ttft,
        "TPOT (s)": lambda r: r.tpot,
        "E2E latency (s)": lambda r: r.e2e,
    }
    for ax, (title, get) in zip(axes, figures.items(), strict=True):
        for concurrency, records in sorted(levels.items()):
            values = np.sort([v for r in records if r.ok and (v := get(r)) is not None])
            if len(values):
                ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post")
                ax.lines[-1].set_label(f"concurrency {concurrency}")
        ax.set_xlabel(title)
        ax.set_ylabel("share of requests")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def similarity(ids: list[str], paired: np.ndarray, threshold: float | None, path: Path) -> Path:
    """Per-prompt cosine similarity to the reference answer, lowest first."""
    order = np.argsort(paired)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.18 * len(ids)), 4.5))
    ax.bar(range(len(ids)), paired[order], color="tab:blue")
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.3f}")
        ax.legend()
    ax.set_xticks(range(len(ids)), [ids[i] for i in order], rotation=90, fontsize=6)
    ax.set_ylabel("cosine similarity to the reference")
    ax.set_ylim(min(0.0, float(paired.min())), 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def distribution_figure(name: str, reference: pd.Series, current: pd.Series, kind: str) -> Figure:
    """Reference vs current distribution of one column (histogram or category shares)."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    if kind == "numeric":
        ref_values = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(float)
        cur_values = pd.to_numeric(current, errors="coerce").dropna().to_numpy(float)
        bins = np.histogram_bin_edges(np.r_[ref_values, cur_values], bins=30).tolist()
        ax.hist(ref_values, bins=bins, density=True, alpha=0.5, label="reference")
        ax.hist(cur_values, bins=bins, density=True, alpha=0.5, label="current")
    else:
        shares = pd.DataFrame(
            {
                "reference": reference.astype(str).value_counts(normalize=True),
                "current": current.astype(str).value_counts(normalize=True),
            }
        ).fillna(0.0)
        shares = shares.sort_values("reference", ascending=False).head(20)
        shares.plot.bar(ax=ax, alpha=0.8)
        ax.tick_params(axis="x", labelsize=7)
    ax.set_title(name)
    ax.legend()
    fig.tight_layout()
    return fig


def samples_figure(title: str, samples: dict[str, np.ndarray], xlabel: str) -> Figure:
    """Empirical CDFs of a few named samples (e.g. reference vs current TTFT)."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, values in samples.items():
        ordered = np.sort(np.asarray(values, dtype=float))
        if len(ordered):
            ax.step(
                ordered, np.arange(1, len(ordered) + 1) / len(ordered), where="post", label=label
            )
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def embeddings_figure(reference: np.ndarray, current: np.ndarray) -> Figure:
    """Reference and current answer embeddings on their first two principal components."""
    both = np.vstack([reference, current]).astype(float)
    centred = both - both.mean(axis=0)
    _, _, axes_t = np.linalg.svd(centred, full_matrices=False)
    points = centred @ axes_t[:2].T
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ref, cur = points[: len(reference)], points[len(reference) :]
    ax.scatter(ref[:, 0], ref[:, 1], s=12, alpha=0.6, label="reference")
    ax.scatter(cur[:, 0], cur[:, 1], s=12, alpha=0.6, label="live")
    ax.set_title("answer embeddings, first two principal components")
    ax.legend()
    fig.tight_layout()
    return fig


def svg(fig: Figure) -> str:
    """The figure as inline SVG markup (text kept as text), and the figure closed."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]
