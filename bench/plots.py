"""The pictures of ``python -m bench`` (matplotlib, the ``bench`` extra): PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure as Picture

from bench.common import Figure, pct

QUANTILES = (0.5, 0.9, 0.99, 0.999)


def throughput_vs_clients(figures: Sequence[Figure], path: Path, title: str) -> Path:
    """One line per path: median jobs/s against the number of clients, min-max as bars."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = list(dict.fromkeys(f.name for f in figures))
    for name in names:
        mine = sorted((f for f in figures if f.name == name), key=lambda f: int(f.notes["clients"]))
        xs = [int(f.notes["clients"]) for f in mine]
        ys = [f.median for f in mine]
        low = [f.median - min(f.values) for f in mine]
        high = [max(f.values) - f.median for f in mine]
        style = "--" if name.startswith("raw") else ":" if "Procrastinate" in name else "-"
        ax.errorbar(xs, ys, yerr=[low, high], label=name, marker="o", linestyle=style,
                    capsize=3)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("jobs/s (median, min-max)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def latency_percentiles(
    series: Sequence[tuple[str, Sequence[float]]], path: Path, title: str, unit: str = "ms"
) -> Path:
    """Grouped bars: p50, p90, p99, p99.9 of each series (latencies in seconds)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(QUANTILES))
    for k, q in enumerate(QUANTILES):
        values = [pct(samples, q) * 1e3 for _, samples in series]
        xs = [i + k * width for i in range(len(series))]
        ax.bar(xs, values, width, label=f"p{q * 100:g}")
    ax.set_xticks([i + width * (len(QUANTILES) - 1) / 2 for i in range(len(series))])
    ax.set_xticklabels([_wrap(name) for name, _ in series], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def bars(figures: Sequence[Figure], path: Path, title: str, unit: str) -> Path:
    """Median with min-max of each figure, side by side."""
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(figures))
    ys = [f.median for f in figures]
    err = [[f.median - min(f.values) for f in figures], [max(f.values) - f.median for f in figures]]
    ax.bar(xs, ys, yerr=err, capsize=4, color=["C0", "C1", "C2", "C3", "C4"][: len(figures)])
    ax.set_xticks(list(xs))
    ax.set_xticklabels([_wrap(f.name) for f in figures], fontsize=8)
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def _wrap(name: str, width: int = 22) -> str:
    words, lines, line = name.split(), [], ""
    for word in words:
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def _save(fig: Picture, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
