"""PNG plots for run reports. Uses matplotlib's object API (Figure + the Agg canvas savefig picks for .png), never
pyplot: no global backend state, no display needed, safe from worker threads."""

from __future__ import annotations

from pathlib import Path

from .metrics import Estimate

COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _figure(width: float = 7.0, height: float = 4.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def _est(value) -> Estimate:
    return value if isinstance(value, Estimate) else Estimate(**value)


def grouped_bars(path: Path, title: str, metrics: list[str], systems: dict[str, dict], ylabel: str = "score (%)",
                 scale: float = 100.0, references: dict[str, dict[str, float]] | None = None) -> Path:
    """One group of bars per metric, one bar per system, 95% CI whiskers; `references[system][metric]` draws a
    published number as a black diamond on that bar."""
    fig, ax = _figure(max(5.0, 1.2 + 0.9 * len(metrics) * max(1, len(systems)) ** 0.7))
    width = 0.8 / max(1, len(systems))
    for s, (name, values) in enumerate(systems.items()):
        xs, heights, errs = [], [], [[], []]
        for m, metric in enumerate(metrics):
            est = _est(values[metric])
            if est.mean is None:
                continue
            xs.append(m + (s - (len(systems) - 1) / 2) * width)
            heights.append(est.mean * scale)
            errs[0].append((est.mean - est.lo) * scale)
            errs[1].append((est.hi - est.mean) * scale)
            ref = (references or {}).get(name, {}).get(metric)
            if ref is not None:
                ax.plot(xs[-1], ref * scale, marker="D", color="black", markersize=6, zorder=5,
                        label="published" if not ax.get_legend_handles_labels()[1].count("published") else None)
        ax.bar(xs, heights, width * 0.95, yerr=errs, capsize=3, label=name, color=COLORS[s % len(COLORS)])
        for x, h, up in zip(xs, heights, errs[1]):  # above the whisker, clear of the published diamond
            ax.annotate(f"{h:.1f}", (x, h + up), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path)
    return path


def recall_curves(path: Path, title: str, ks: list[int], curves: dict[str, list[float]]) -> Path:
    fig, ax = _figure()
    for i, (name, values) in enumerate(curves.items()):
        ax.plot(ks, [v * 100 for v in values], label=name, color=COLORS[i % len(COLORS)], linewidth=2)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("k (documents retrieved)")
    ax.set_ylabel("Recall@k (%)")
    ax.set_title(title)
    top = max((v for values in curves.values() for v in values), default=1.0) * 100
    ax.set_ylim(0, min(100.0, top * 1.15 + 1))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.savefig(path)
    return path


def differences(path: Path, title: str, comparisons: list[dict], metrics: list[str], scale: float = 100.0) -> Path:
    """Forest plot: each candidate − base difference with its paired-bootstrap CI; the zero line is 'no change'."""
    rows = [(f"{c['candidate']} − {c['base']}: {m}", _est(c["metrics"][m]["diff"]), c["metrics"][m]["verdict"])
            for c in comparisons for m in metrics]
    rows = [r for r in rows if r[1].mean is not None]
    fig, ax = _figure(7.0, max(2.0, 0.45 * len(rows) + 1.2))
    colors = {"better": "#55A868", "worse": "#C44E52", "no different": "#8C8C8C"}
    for y, (label, est, word) in enumerate(reversed(rows)):
        ax.errorbar(est.mean * scale, y, xerr=[[(est.mean - est.lo) * scale], [(est.hi - est.mean) * scale]],
                    fmt="o", color=colors[word], capsize=4)
        ax.annotate(word, (est.hi * scale, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8,
                    color=colors[word])
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    ax.set_xlabel("difference (points, 95% paired bootstrap CI)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.25)
    fig.savefig(path)
    return path


def refusals(path: Path, title: str, systems: dict[str, tuple[float, float]]) -> Path:
    """Stacked bars for unanswerable questions: correct refusals vs hallucinated answers (shares)."""
    fig, ax = _figure(max(5.5, 2.0 + 1.5 * len(systems)))
    names = list(systems)
    refused = [systems[n][0] * 100 for n in names]
    answered = [systems[n][1] * 100 for n in names]
    ax.bar(names, refused, color="#55A868", label="refused (correct)", width=0.6)
    ax.bar(names, answered, bottom=refused, color="#C44E52", label="answered (hallucinated)", width=0.6)
    for x, (r, a) in enumerate(zip(refused, answered)):
        inside = r >= 8
        ax.annotate(f"{r:.0f}% refused", (x, r / 2 if inside else r), xytext=(0, 0 if inside else 3),
                    textcoords="offset points", ha="center", va="center" if inside else "bottom",
                    color="white" if inside else "black", fontsize=9)
        if a >= 8:
            ax.annotate(f"{a:.0f}% answered", (x, r + a / 2), ha="center", va="center", color="white", fontsize=9)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of questions (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    fig.savefig(path)
    return path
