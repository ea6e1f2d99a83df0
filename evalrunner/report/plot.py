"""Score against shots: one panel per dataset, one line per config group, stddev error bars, interval band.

The files must be byte-identical for the same cells, so that a rerun rewrites nothing: the PNG carries no
Software stamp, the SVG no date, and SVG ids are hashed with a fixed salt.
"""

import io
from collections.abc import Sequence

from evalrunner.errors import UserError
from evalrunner.report.cells import Stats


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib
    except ImportError:
        raise UserError("the report's plots need matplotlib: pip install 'evalrunner[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figures(stats: Sequence[Stats]) -> tuple[bytes, bytes]:
    """The PNG and the SVG of the cells' scores against shots."""
    plt = _pyplot()
    datasets = sorted({s.cell.dataset for s in stats})
    with plt.rc_context({"svg.hashsalt": "evalrunner", "svg.fonttype": "none", "font.size": 9}):
        fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
        for ax, dataset in zip(axes[0], datasets):
            _panel(ax, [s for s in stats if s.cell.dataset == dataset], dataset)
        fig.tight_layout()
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    return png.getvalue(), svg.getvalue()


def _panel(ax, stats: list[Stats], dataset: str) -> None:  # type: ignore[no-untyped-def]
    # Shots sit at even spacing (0, 4, 8, 16, 32 would crowd the left on a linear axis), labelled by their count.
    shots = sorted({s.cell.shots for s in stats})
    x_of = {n: i for i, n in enumerate(shots)}
    groups = sorted({s.cell.group for s in stats})
    for k, group in enumerate(groups):
        line = sorted((s for s in stats if s.cell.group == group), key=lambda s: s.cell.shots)
        color = f"C{k % 10}"
        ax.errorbar([x_of[s.cell.shots] for s in line], [s.cell.mean for s in line],
                    yerr=[s.cell.stddev for s in line], marker="o", ms=4, capsize=3, color=color, label=group)
        band = [(x_of[s.cell.shots], *s.interval) for s in line if s.interval is not None]
        if band:
            x, lo, hi = zip(*band)
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)
    ax.set_xticks(range(len(shots)), [str(n) for n in shots])
    ax.set_xlabel("shots")
    ax.set_ylabel(stats[0].cell.metric)
    ax.set_title(dataset)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="bars: trials' stddev, band: 95% interval", title_fontsize=7)
