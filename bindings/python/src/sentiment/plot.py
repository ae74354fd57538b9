"""Training curves as a dependency-free SVG image.

    sentiment.plot.write_curves_svg(result, "curves.svg")
    python -m sentiment.plot result.json curves.svg [--title T] [--reference 0.868,0.876,...]

Left panel: training loss per optimizer step (the result's "curve"; raw and smoothed)
with the eval loss after each epoch. Right panel: eval accuracy per epoch, optionally
next to reference accuracies (e.g. a published table).
"""

import argparse
import json
import math
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 1000, 480
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'
COLORS = {
    "raw": "#9ecae1", "train": "#1f77b4", "eval_loss": "#ff7f0e", "accuracy": "#2ca02c",
    "reference": "#7f7f7f", "grid": "#e6e6e6", "axis": "#333333", "epoch": "#bbbbbb",
}


def curves_svg(result, title=None, reference=None, reference_label="reference"):
    """The SVG text for a train result (the dict sentiment.train returns).

    reference: optional eval accuracies per epoch (1, 2, ...) drawn dashed for comparison.
    """
    epochs = [e for e in result.get("epochs") or [] if isinstance(e, dict)]
    curve = result.get("curve") or {}
    steps, losses = list(curve.get("steps") or []), list(curve.get("loss") or [])
    svg = _Svg()
    svg.text(WIDTH / 2, 26, title or "Fine-tuning curves", size=17, anchor="middle", weight="bold")
    _loss_panel(svg, _Box(70, 60, 530, 290), steps, losses, epochs)
    _accuracy_panel(svg, _Box(690, 60, 280, 290), epochs, reference, reference_label)
    summary = _summary(result)
    if summary:
        svg.text(WIDTH / 2, HEIGHT - 12, summary, size=12, anchor="middle", color="#555555")
    return svg.render()


def write_curves_svg(result, path, title=None, reference=None, reference_label="reference"):
    """Writes curves_svg(...) to `path` and returns the path."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(curves_svg(result, title=title, reference=reference, reference_label=reference_label))
    return path


# --- panels ------------------------------------------------------------------------------

def _loss_panel(svg, box, steps, losses, epochs):
    points = [(s, v) for s, v in zip(steps, losses) if _finite(s) and _finite(v)]
    evals = [(e["step"], e["eval_loss"]) for e in epochs if _finite(e.get("step")) and _finite(e.get("eval_loss"))]
    svg.text(box.x + box.w / 2, box.y - 12, "Loss", size=14, anchor="middle", weight="bold")
    if not points and not evals:
        _empty(svg, box, "no steps recorded")
        return
    last_step = max([s for s, _ in points + evals] + [1])
    values = [v for _, v in points + evals]
    x = _Axis(0, last_step, integer=True, exact=True)
    y = _Axis(min(0.0, min(values)), max(values), from_zero=True)
    _frame(svg, box, x, y, "optimizer step", "cross-entropy loss")
    for e in epochs:  # epoch boundaries
        if _finite(e.get("step")) and 0 < e["step"] <= x.hi:
            px = box.x + x.frac(e["step"]) * box.w
            svg.line(px, box.y, px, box.y + box.h, COLORS["epoch"], dash="3,3")
            svg.text(px - 3, box.y + 12, f"epoch {e.get('epoch')}", size=10, anchor="end", color="#888888")
    raw = [(box.x + x.frac(s) * box.w, box.y + (1 - y.frac(v)) * box.h) for s, v in points]
    legend = []
    if len(points) > 50:
        svg.polyline(raw, COLORS["raw"], width=1)
        window = max(2, len(points) // 25)
        smooth = _moving_average([v for _, v in points], window)
        svg.polyline([(px, box.y + (1 - y.frac(v)) * box.h) for (px, _), v in zip(raw, smooth)], COLORS["train"], width=2)
        legend += [("line", COLORS["raw"], "train loss (per step)"),
                   ("line", COLORS["train"], f"train loss ({window}-step mean)")]
    elif points:
        svg.polyline(raw, COLORS["train"], width=2)
        for px, py in raw:
            svg.circle(px, py, 2.5, COLORS["train"])
        legend.append(("line", COLORS["train"], "train loss (per step)"))
    if evals:
        pts = [(box.x + x.frac(s) * box.w, box.y + (1 - y.frac(v)) * box.h) for s, v in evals]
        svg.polyline(pts, COLORS["eval_loss"], width=2)
        for px, py in pts:
            svg.circle(px, py, 4, COLORS["eval_loss"])
        legend.append(("marker", COLORS["eval_loss"], "eval loss (end of epoch)"))
    _legend(svg, box, legend)


def _accuracy_panel(svg, box, epochs, reference, reference_label):
    rows = [(e["epoch"], e["eval_accuracy"]) for e in epochs
            if _finite(e.get("epoch")) and _finite(e.get("eval_accuracy"))]
    refs = [(i + 1, v) for i, v in enumerate(reference or []) if _finite(v)]
    by_step = len({e for e, _ in rows}) < len(rows)   # eval_strategy "steps": several rows per epoch
    if by_step:
        rows = [(e["step"], e["eval_accuracy"]) for e in epochs
                if _finite(e.get("step")) and _finite(e.get("eval_accuracy"))]
        refs = []
    svg.text(box.x + box.w / 2, box.y - 12, "Eval accuracy", size=14, anchor="middle", weight="bold")
    if not rows:
        _empty(svg, box, "no accuracy yet", "(no eval_file, or no epoch finished)")
        return
    last = max(e for e, _ in rows + refs)
    values = [v for _, v in rows + refs]
    x = _Axis(0, last, integer=True) if by_step else _Axis(0.5, last + 0.5, integer=True, exact=True)
    y = _Axis(min(values), max(values), pad=0.15)
    _frame(svg, box, x, y, "step" if by_step else "epoch", "accuracy")
    legend = []
    if refs:
        pts = [(box.x + x.frac(e) * box.w, box.y + (1 - y.frac(v)) * box.h) for e, v in refs]
        svg.polyline(pts, COLORS["reference"], width=1.5, dash="6,4")
        for px, py in pts:
            svg.circle(px, py, 3, COLORS["reference"])
        legend.append(("dash", COLORS["reference"], reference_label))
    pts = [(box.x + x.frac(e) * box.w, box.y + (1 - y.frac(v)) * box.h) for e, v in rows]
    svg.polyline(pts, COLORS["accuracy"], width=2)
    best = max(rows, key=lambda r: r[1])
    for (e, v), (px, py) in zip(rows, pts):
        svg.circle(px, py, 4, COLORS["accuracy"])
        svg.text(px, py - 9, f"{v:.3f}", size=11, anchor="middle", color=COLORS["accuracy"], halo=True)
        if (e, v) == best:
            svg.circle(px, py, 8, "none", stroke=COLORS["accuracy"])
    legend.append(("marker", COLORS["accuracy"], "this run (ring: best)"))
    _legend(svg, box, legend)


def _frame(svg, box, x, y, xlabel, ylabel):
    for t in y.ticks:
        py = box.y + (1 - y.frac(t)) * box.h
        svg.line(box.x, py, box.x + box.w, py, COLORS["grid"])
        svg.line(box.x - 5, py, box.x, py, COLORS["axis"])
        svg.text(box.x - 8, py + 4, y.label(t), size=11, anchor="end")
    for t in x.ticks:
        px = box.x + x.frac(t) * box.w
        svg.line(px, box.y + box.h, px, box.y + box.h + 5, COLORS["axis"])
        svg.text(px, box.y + box.h + 19, x.label(t), size=11, anchor="middle")
    svg.rect(box.x, box.y, box.w, box.h, COLORS["axis"])
    svg.text(box.x + box.w / 2, box.y + box.h + 38, xlabel, size=12, anchor="middle")
    cx, cy = box.x - 52, box.y + box.h / 2
    svg.text(cx, cy, ylabel, size=12, anchor="middle", rotate=(-90, cx, cy))


def _legend(svg, box, entries):
    """Legend rows under the panel's axis label, wrapped to the panel's width."""
    x, y = box.x, box.y + box.h + 62
    for kind, color, label in entries:
        width = 34 + 6.4 * len(label) + 16
        if x > box.x and x + width > box.x + box.w:
            x, y = box.x, y + 18
        svg.line(x, y - 4, x + 22, y - 4, color, width=2, dash="6,4" if kind == "dash" else None)
        if kind == "marker":
            svg.circle(x + 11, y - 4, 4, color)
        svg.text(x + 28, y, label, size=11)
        x += width


def _empty(svg, box, *lines):
    svg.rect(box.x, box.y, box.w, box.h, "#cccccc")
    for i, line in enumerate(lines):
        svg.text(box.x + box.w / 2, box.y + box.h / 2 + 18 * i, line, size=12, anchor="middle", color="#888888")


def _summary(result):
    parts = []
    if result.get("best_epoch") is not None:
        parts.append(f"best epoch {result['best_epoch']}")
    if result.get("steps") is not None:
        parts.append(f"{result['steps']} steps")
    if _finite(result.get("train_examples")):
        parts.append(f"{result['train_examples']} train examples")
    if _finite(result.get("train_tokens_per_second")):
        parts.append(f"{result['train_tokens_per_second']:.0f} tokens/s")
    if result.get("cancelled"):
        parts.append("cancelled")
    return " · ".join(parts)


# --- axes and SVG primitives ---------------------------------------------------------------

class _Box:
    def __init__(self, x, y, w, h):
        self.x, self.y, self.w, self.h = x, y, w, h


class _Axis:
    """A linear axis with about five 'nice' ticks (1, 2, 2.5 or 5 times a power of ten)."""

    def __init__(self, lo, hi, integer=False, exact=False, from_zero=False, pad=0.0):
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5 * (abs(lo) or 1) * 0.1, hi + 0.5 * (abs(hi) or 1) * 0.1
        span = hi - lo
        lo, hi = lo - pad * span, hi + pad * span
        step = _nice_step((hi - lo) / 5, integer)
        if exact:
            self.lo, self.hi = lo, hi
            first = math.ceil(lo / step - 1e-9) * step
        else:
            self.lo = 0.0 if from_zero and lo >= 0 else math.floor(lo / step + 1e-9) * step
            self.hi = math.ceil(hi / step - 1e-9) * step
            first = self.lo
        self.ticks = []
        t = first
        while t <= self.hi + step * 1e-6:
            self.ticks.append(round(t, 12))
            t += step
        self.decimals = next((d for d in range(7) if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-6), 6)

    def frac(self, v):
        return (v - self.lo) / (self.hi - self.lo)

    def label(self, v):
        return f"{v:.{self.decimals}f}"


def _nice_step(raw, integer):
    if raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        step = m * magnitude
        if step >= raw and not (integer and step != int(step)):
            return max(step, 1) if integer else step
    return 10 * magnitude


def _moving_average(values, window):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Svg:
    def __init__(self):
        self.items = []

    def line(self, x1, y1, x2, y2, color, width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.items.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                          f'stroke="{color}" stroke-width="{width}"{d}/>')

    def polyline(self, points, color, width=1, dash=None):
        if len(points) < 2:
            return
        d = f' stroke-dasharray="{dash}"' if dash else ""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.items.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="{width}" '
                          f'stroke-linejoin="round"{d}/>')

    def circle(self, x, y, r, fill, stroke=None):
        s = f' stroke="{stroke}" stroke-width="1.5"' if stroke else ""
        self.items.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}"{s}/>')

    def rect(self, x, y, w, h, stroke, fill="none", opacity=None):
        o = f' fill-opacity="{opacity}"' if opacity is not None else ""
        self.items.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                          f'fill="{fill}"{o} stroke="{stroke}"/>')

    def text(self, x, y, text, size=12, anchor="start", color="#222222", weight=None, rotate=None, halo=False):
        w = f' font-weight="{weight}"' if weight else ""
        if halo:  # a white outline under the glyphs keeps a label readable over lines
            w += ' stroke="white" stroke-width="3" paint-order="stroke"'
        r = f' transform="rotate({rotate[0]} {rotate[1]:.1f} {rotate[2]:.1f})"' if rotate else ""
        self.items.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'fill="{color}" {FONT}{w}{r}>{escape(str(text))}</text>')

    def render(self):
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
                f'viewBox="0 0 {WIDTH} {HEIGHT}">\n<rect width="100%" height="100%" fill="white"/>\n')
        return head + "\n".join(self.items) + "\n</svg>\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draws a sentiment.train result as an SVG image.")
    parser.add_argument("result_json", help="a train result document (JSON file)")
    parser.add_argument("output_svg")
    parser.add_argument("--title")
    parser.add_argument("--reference", help="comma-separated eval accuracies per epoch to compare with")
    parser.add_argument("--reference-label", default="reference")
    args = parser.parse_args(argv)
    with open(args.result_json, encoding="utf-8") as f:
        result = json.load(f)
    reference = [float(v) for v in args.reference.split(",")] if args.reference else None
    write_curves_svg(result, args.output_svg, title=args.title, reference=reference,
                     reference_label=args.reference_label)
    print(args.output_svg)


if __name__ == "__main__":
    main()
