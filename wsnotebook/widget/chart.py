"""The monitor's throughput chart: a bqplot figure of events/s with one line, or one line per
``hook_event_type``, over the chosen window.

Owns the bqplot models (figure, line mark, date and linear scales, axes) and how the view-model's
(x, y, labels) are drawn on them.  Every trait goes through the view's ``set_trait`` (set only
when changed, counted as a send), so redrawing unchanged data sends nothing.  The y axis starts
at 0 (no scale padding) and its top is a steady 1/2/5 step (:func:`.viewmodel.chart_range`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .render import PALETTE, color
from .viewmodel import chart_range

__all__ = ["ThroughputChart"]


class ThroughputChart:
    """The bqplot figure (``figure``) with its ``lines``, ``xscale`` and ``yscale``."""

    def __init__(self, set_trait: Callable[[Any, str, Any], bool]) -> None:
        import bqplot as bq

        self._set = set_trait
        self.xscale = xs = bq.DateScale()
        # allow_padding=False: with padding allowed, the front end widens the y axis's domain by
        # the line's stroke padding (stroke_width / 2 px) at both ends, and bqplot spaces
        # num_ticks ticks from that widened lower end: the lowest tick read a small negative
        # rate (-0.00607 for 0..1 on the 150 px plot area).  Without it the domain is [0, max].
        self.yscale = ys = bq.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self.lines = bq.Lines(
            x=np.array([], dtype="datetime64[ms]"),
            y=np.array([], dtype=float),
            scales={"x": xs, "y": ys},
            colors=[PALETTE[0]],
            fill="bottom",
            fill_opacities=[0.12],
            stroke_width=1.8,
            interpolation="linear",
        )
        ax_x = bq.Axis(scale=xs, side="bottom", label="", tick_format="%H:%M:%S", num_ticks=7)
        ax_y = bq.Axis(
            scale=ys,
            side="left",
            label="events/s",
            label_offset="42px",
            tick_format=",.3~g",
            num_ticks=4,
            grid_color="#e6e6e6",
        )
        ax_x.grid_color = "#e6e6e6"
        self.figure = bq.Figure(
            marks=[self.lines],
            axes=[ax_x, ax_y],
            fig_margin={"top": 12, "bottom": 28, "left": 60, "right": 140},
            legend_location="top-right",
            legend_style={"stroke-width": 0},
            animation_duration=0,
            padding_x=0.0,
            padding_y=0.0,
            layout={"height": "190px", "width": "100%"},
        )
        self.figure.add_class("wsn-chart")

    def show(self, x: np.ndarray, y: np.ndarray, labels: list[str], window_s: int) -> None:
        """Draw the view-model's chart data over a ``window_s`` second window."""
        lines, set_trait = self.lines, self._set
        multi = y.ndim == 2
        colors = [color(lb) for lb in labels] if multi else [PALETTE[0]]
        with lines.hold_sync():
            set_trait(lines, "labels", labels if multi else [])
            set_trait(lines, "colors", colors)
            set_trait(lines, "fill", "none" if multi else "bottom")
            set_trait(lines, "display_legend", multi)
            set_trait(lines, "x", x)
            set_trait(lines, "y", y)
        span = chart_range(x, y, window_s)
        if span is not None:
            start, end, top = span
            with self.xscale.hold_sync():
                set_trait(self.xscale, "min", start)
                set_trait(self.xscale, "max", end)
            set_trait(self.yscale, "max", top)
