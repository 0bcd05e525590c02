"""Draw a memory snapshot (`ember.cuda.memory._dump_snapshot`): active memory over time, stacked by
allocation site, as a PNG and as a self-contained HTML page (inline SVG, data and script; nothing is
fetched from the network).

    python -m ember.cuda.memory_viz SNAPSHOT.json [-o OUT] [--by op|frame] [--device N] [--top K]
                                    [--format both|png|html]

writes OUT.png and OUT.html (OUT defaults to SNAPSHOT without its suffix; a .png or .html suffix of
OUT is dropped). From Python: `render(snapshot_or_path, png=..., html=...)`, `timeline(...)`.

The x axis counts allocator events (the device trace's entries); the y axis is active memory:
a block counts from its `alloc` to its `free_completed` (a block freed while other streams still
used it stays active until then). Blocks that were allocated before history was recorded (or whose
`alloc` entry was dropped by `max_entries`) count from the start, under their recorded op if the
snapshot has one, else "(before history)". An allocation's site is the ember op that made it
(`--by op`, the default; the top user frame when no op was set) or its top user frame (`--by frame`:
the innermost frame outside the ember package). The `--top` largest sites by peak get their own
colour; the rest are summed as "(other)". The dashed line is reserved memory (segments).

The PNG comes from matplotlib when it is installed (`pip install ember[plot]`); without it, from a
small built-in PNG writer that draws the same areas without text (the HTML page has the labels).
"""
from __future__ import annotations

import argparse
import html as _html
import json
import os
import re
import struct
import sys
import zlib

import numpy as np

__all__ = ["load", "timeline", "Timeline", "render", "write_png", "write_html", "main"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
           "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
OTHER = "(other)"
BEFORE = "(before history)"
UNKNOWN = "(unknown)"
MAX_POINTS = 2000           # points drawn; longer traces keep the bucket maxima

# a frame inside the ember package (but not ember/examples, whose frames are user code)
_EMBER_FRAME = re.compile(r"[/\\]ember[/\\](?!examples[/\\])")


# ---- reading ------------------------------------------------------------------------------------

def load(path) -> dict:
    """A snapshot written by `_dump_snapshot` (JSON)."""
    with open(path) as f:
        snap = json.load(f)
    if not isinstance(snap, dict) or "segments" not in snap or "device_traces" not in snap:
        raise ValueError(f"{path}: not a memory snapshot (expected a JSON object with 'segments' and "
                         f"'device_traces', as ember.cuda.memory._dump_snapshot writes)")
    return snap


def top_frame(frames):
    """The innermost frame outside the ember package (else the innermost one), or None."""
    if not frames:
        return None
    for f in frames:
        if not _EMBER_FRAME.search(str(f.get("filename", ""))):
            return f
    return frames[0]


def frame_label(f) -> str:
    return f"{f.get('name', '?')} ({os.path.basename(str(f.get('filename', '?')))}:{f.get('line', '?')})"


def site_of(op, frames, by: str = "op") -> str:
    """An allocation's site: its op (by="op"), else / or (by="frame") its top user frame."""
    if by == "op" and op:
        return str(op)
    f = top_frame(frames)
    if f is not None:
        return frame_label(f)
    return str(op) if op else UNKNOWN


# ---- the timeline -------------------------------------------------------------------------------

def _block_site(b, by):
    """The site of a block of the snapshot's segments (BEFORE when it has no recorded context)."""
    if b is None or ("op" not in b and "frames" not in b):
        return BEFORE
    name = site_of(b.get("op"), b.get("frames"), by)
    return BEFORE if name == UNKNOWN else name


class Timeline:
    """Active memory after each event of one device's trace, per allocation site.

    `sites`: names, largest peak first ("(other)" last when there is one); `series`: int64 array
    (len(sites), n) of active bytes; `x`: the event numbers (0..n-1, or a subset after
    `downsample`); `time_us`, `actions`: per point; `reserved`: reserved bytes per point;
    `peaks`: {site: peak bytes} of every site before grouping; `counts`: {site: allocations};
    `device`; `blocks`: the snapshot's live blocks (dicts with address, size, state, op, site), largest first.
    """

    def __init__(self, sites, series, x, time_us, actions, reserved, peaks, counts, totals, device, blocks):
        self.sites = sites
        self.series = series
        self.x = x
        self.time_us = time_us
        self.actions = actions
        self.reserved = reserved
        self.peaks = peaks
        self.counts = counts
        self.totals = totals
        self.device = device
        self.blocks = blocks

    @property
    def total(self) -> np.ndarray:
        return self.series.sum(axis=0) if len(self.sites) else np.zeros(len(self.x), dtype=np.int64)

    def downsample(self, max_points: int = MAX_POINTS) -> "Timeline":
        """At most `max_points` points: per bucket of consecutive events, the one with the most active
        memory (so peaks survive), plus the first and last events."""
        n = len(self.x)
        if n <= max_points:
            return self
        total = self.total
        edges = np.linspace(0, n, max_points - 1).astype(np.int64)
        keep = {0, n - 1}
        for lo, hi in zip(edges[:-1], edges[1:]):
            if hi > lo:
                keep.add(int(lo + np.argmax(total[lo:hi])))
        idx = np.array(sorted(keep), dtype=np.int64)
        return Timeline(self.sites, self.series[:, idx], self.x[idx], self.time_us[idx],
                        [self.actions[i] for i in idx], self.reserved[idx], self.peaks, self.counts, self.totals,
                        self.device, self.blocks)


def _pick_device(snap, device):
    traces = snap.get("device_traces") or []
    if device is not None:
        if not 0 <= device < len(traces) and not any(s.get("device") == device for s in snap["segments"]):
            raise ValueError(f"the snapshot has no device {device} (its traces: {len(traces)})")
        return device
    for i, tr in enumerate(traces):
        if tr:
            return i
    devs = sorted({s.get("device", 0) for s in snap["segments"]})
    return devs[0] if devs else 0


def timeline(snapshot, device=None, by: str = "op", top: int = 12) -> Timeline:
    """The Timeline of `device`'s trace (default: the first device with a trace) in `snapshot` (a
    dict or a path), stacked by site (`by`: "op" or "frame"), the `top` largest sites kept apart."""
    if by not in ("op", "frame"):
        raise ValueError(f"by must be 'op' or 'frame', got {by!r}")
    snap = load(snapshot) if isinstance(snapshot, (str, os.PathLike)) else snapshot
    dev = _pick_device(snap, device)
    traces = snap.get("device_traces") or []
    trace = traces[dev] if dev < len(traces) else []
    segments = [s for s in snap["segments"] if s.get("device", dev) == dev]

    live_blocks = {}
    for seg in segments:
        for b in seg.get("blocks", ()):
            if b.get("state") in ("active_allocated", "active_pending_free"):
                live_blocks[b["address"]] = b

    # pass 1: blocks active before the trace starts (freed in it without an alloc, or live at the end
    # without one)
    live = set()
    pre = {}
    for e in trace:
        a = e.get("action")
        addr = e.get("addr")
        if a == "alloc":
            live.add(addr)
        elif a == "free_requested":
            if addr not in live:
                pre[addr] = e.get("size", 0)
                live.add(addr)
        elif a == "free_completed":
            if addr in live:
                live.discard(addr)
            else:
                pre[addr] = e.get("size", 0)
    pre_sites = dict.fromkeys(pre, BEFORE)     # freed in the trace: what allocated them is not known
    for addr, b in live_blocks.items():
        if addr not in live:        # live at the end, never allocated in the trace: the snapshot knows
            pre[addr] = b["size"]
            pre_sites[addr] = _block_site(b, by)

    # pass 2: per event, the site whose active bytes change and by how much
    site_ids = {}
    names = []

    def sid(name):
        i = site_ids.get(name)
        if i is None:
            i = site_ids[name] = len(names)
            names.append(name)
        return i

    cur = {}                # site id -> active bytes
    peak = {}
    counts = {}
    totals = {}
    where = {}              # live address -> (site id, size)
    for addr, size in pre.items():
        i = sid(pre_sites[addr])
        where[addr] = (i, size)
        cur[i] = cur.get(i, 0) + size
        peak[i] = cur[i]
    init = dict(cur)        # site id -> active bytes before the first event

    n = len(trace)
    ev_site = np.full(n, -1, dtype=np.int64)
    ev_delta = np.zeros(n, dtype=np.int64)
    res_delta = np.zeros(n, dtype=np.int64)
    time_us = np.zeros(n, dtype=np.int64)
    actions = []
    for k, e in enumerate(trace):
        a = e.get("action")
        actions.append(a)
        time_us[k] = e.get("time_us", 0) or 0
        addr = e.get("addr")
        size = int(e.get("size", 0) or 0)
        if a == "alloc":
            name = site_of(e.get("op"), e.get("frames"), by)
            i = sid(name)
            where[addr] = (i, size)
            counts[name] = counts.get(name, 0) + 1
            totals[name] = totals.get(name, 0) + size
        elif a == "free_completed":
            got = where.pop(addr, None)
            if got is None:
                continue
            i, size = got
            size = -size
        elif a == "segment_alloc":
            res_delta[k] = size
            continue
        elif a == "segment_free":
            res_delta[k] = -size
            continue
        else:
            continue
        ev_site[k] = i
        ev_delta[k] = size
        c = cur.get(i, 0) + size
        cur[i] = c
        if c > peak.get(i, 0):
            peak[i] = c

    # the `top` largest sites by peak keep their own row; the rest share OTHER
    order = sorted(range(len(names)), key=lambda i: (-peak.get(i, 0), names[i]))
    kept = [i for i in order if peak.get(i, 0) > 0][:max(int(top), 1)]
    kept_set = set(kept)
    rest = [i for i in order if i not in kept_set and peak.get(i, 0) > 0]
    sites = [names[i] for i in kept] + ([OTHER] if rest else [])
    row_of = np.full(len(names) + 1, len(kept), dtype=np.int64)     # default: OTHER (or a dropped row)
    for r, i in enumerate(kept):
        row_of[i] = r
    nrows = len(sites)
    start = np.zeros(max(nrows, 1), dtype=np.int64)
    for i, v in init.items():
        r = row_of[i]
        if r < nrows:
            start[r] += v
    series = np.zeros((nrows, n), dtype=np.int64)
    has = ev_site >= 0
    if nrows:
        rows = row_of[ev_site[has]]
        ok = rows < nrows
        cols = np.nonzero(has)[0][ok]
        series[rows[ok], cols] = ev_delta[has][ok]
        series = np.cumsum(series, axis=1) + start[:nrows, None]

    # reserved memory: the snapshot's segments at the end, minus what the trace added
    reserved_end = sum(int(s.get("total_size", 0)) for s in segments)
    reserved = reserved_end - int(res_delta.sum()) + np.cumsum(res_delta)

    peaks = {names[i]: int(peak.get(i, 0)) for i in order}
    blocks = []
    for addr, b in sorted(live_blocks.items(), key=lambda kv: -kv[1]["size"]):
        blocks.append({"address": addr, "size": b["size"], "requested_size": b.get("requested_size", 0),
                       "state": b.get("state"), "op": b.get("op"), "site": _block_site(b, by)})
    return Timeline(sites, series, np.arange(n, dtype=np.int64), time_us, actions, reserved.astype(np.int64),
                    peaks, counts, totals, dev, blocks)


# ---- formatting ---------------------------------------------------------------------------------

def format_bytes(n) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def _unit(maxval):
    for scale, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if maxval >= scale:
            return scale, unit
    return 1, "B"


def _colors(k):
    return [PALETTE[i % len(PALETTE)] if s != OTHER else "#b0b0b0" for i, s in enumerate(k)]


def _hex_rgb(c):
    return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))


# ---- PNG ----------------------------------------------------------------------------------------

def write_png(tl: Timeline, path, width: int = 1200, height: int = 600, use_matplotlib=None) -> str:
    """Draw `tl` as a PNG at `path` (matplotlib when available, else the built-in writer)."""
    tl = tl.downsample()
    if use_matplotlib is None or use_matplotlib:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            if use_matplotlib:
                raise
        else:
            return _png_matplotlib(tl, path, width, height, plt)
    return _png_plain(tl, path, width, height)


def _png_matplotlib(tl, path, width, height, plt):
    dpi = 100
    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    try:
        ymax = max(int(tl.total.max()) if len(tl.x) else 0, int(tl.reserved.max()) if len(tl.x) else 0, 1)
        scale, unit = _unit(ymax)
        # event k spans [x_k, x_k+1): the last point is repeated one event to the right
        x = np.append(tl.x, tl.x[-1] + 1) if len(tl.x) else tl.x
        if len(tl.sites):
            series = np.concatenate([tl.series, tl.series[:, -1:]], axis=1)
            ax.stackplot(x, series / scale, labels=[_short(s, 60) for s in tl.sites],
                         colors=_colors(tl.sites), step="post", linewidth=0)
        if len(tl.x):
            ax.step(x, np.append(tl.reserved, tl.reserved[-1]) / scale, where="post", color="black",
                    linestyle="--", linewidth=1, label="reserved")
        ax.set_xlabel("allocator event")
        ax.set_ylabel(f"memory ({unit})")
        ax.set_title(f"ember CUDA memory: active memory by allocation site (device {tl.device}), "
                     f"peak {format_bytes(tl.total.max() if len(tl.x) else 0)}", fontsize=10)
        ax.set_xlim(0, int(tl.x[-1]) + 1 if len(tl.x) else 1)
        ax.set_ylim(0, ymax / scale * 1.05)
        if len(tl.x):
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return os.fspath(path)


def _png_plain(tl, path, width, height):
    """Stacked areas in a `width` x `height` RGB image, written with zlib: the axes as lines, the
    reserved memory as a dashed black line, no text."""
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    left, right, top, bottom = 40, 20, 20, 30
    pw, ph = width - left - right, height - top - bottom
    n = len(tl.x)
    if n:
        ymax = max(int(tl.total.max()), int(tl.reserved.max()), 1) * 1.05
        xs = tl.x.astype(np.float64)
        span = xs[-1] + 1 - xs[0]                       # event k spans [x_k, x_k + 1)
        # the point shown in each pixel column: the last one at or before it (a step plot)
        colx = xs[0] + (np.arange(pw) + 0.5) / pw * span
        idx = np.clip(np.searchsorted(xs, colx, side="right") - 1, 0, n - 1)
        cum = np.cumsum(tl.series[:, idx], axis=0) if len(tl.sites) else np.zeros((0, pw))
        prev = np.zeros(pw)
        rows = np.arange(ph)[:, None]                   # 0 at the top of the plot area
        for r, color in enumerate(_colors(tl.sites)):
            lo = ph - prev / ymax * ph
            hi = ph - cum[r] / ymax * ph
            mask = (rows >= np.floor(hi)[None, :]) & (rows < np.floor(lo)[None, :])
            img[top:top + ph, left:left + pw][mask] = _hex_rgb(color)
            prev = cum[r]
        ry = np.clip((ph - tl.reserved[idx] / ymax * ph).astype(np.int64), 0, ph - 1)
        dash = (np.arange(pw) // 6) % 2 == 0
        img[top + ry[dash], left + np.arange(pw)[dash]] = 0
    img[top:top + ph + 1, left] = 0                    # y axis
    img[top + ph, left:left + pw] = 0                  # x axis
    _write_png_rgb(img, path)
    return os.fspath(path)


def _write_png_rgb(img: np.ndarray, path) -> None:
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


# ---- HTML ---------------------------------------------------------------------------------------

def _short(s, n):
    return s if len(s) <= n else s[:n - 1] + "\u2026"


def _json_for_script(obj) -> str:
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def write_html(tl: Timeline, path, title=None) -> str:
    """A self-contained page at `path`: the stacked areas as inline SVG with a hover read-out, the
    sites' peaks, and the largest live blocks at the snapshot; the data is embedded as JSON
    (`<script id="ember-memory-data" type="application/json">`)."""
    tl = tl.downsample()
    esc = _html.escape
    W, H = 1100, 480
    L, R, T, B = 70, 10, 10, 40
    pw, ph = W - L - R, H - T - B
    n = len(tl.x)
    total = tl.total
    ymax = max(int(total.max()) if n else 0, int(tl.reserved.max()) if n else 0, 1) * 1.05
    xmax = int(tl.x[-1]) + 1 if n else 1                # event k spans [x_k, x_k + 1)
    scale, unit = _unit(ymax)
    colors = _colors(tl.sites)

    def X(v):
        return L + v / xmax * pw

    def Y(v):
        return T + ph - v / ymax * ph

    def step_points(xs, ys):
        pts = []
        for k in range(len(xs)):
            xv = X(xs[k])
            if k:
                pts.append((xv, Y(ys[k - 1])))
            pts.append((xv, Y(ys[k])))
        if len(xs):
            pts.append((X(xmax), Y(ys[-1])))
        return pts

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" id="plot" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
           f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fff" stroke="#ccc"/>']
    if n and len(tl.sites):
        cum = np.cumsum(tl.series, axis=0)
        prev = np.zeros(n, dtype=np.int64)
        for r, site in enumerate(tl.sites):
            upper = step_points(tl.x, cum[r])
            lower = step_points(tl.x, prev)[::-1]
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in upper + lower)
            svg.append(f'<polygon points="{d}" fill="{colors[r]}" stroke="none"><title>{esc(site)}</title></polygon>')
            prev = cum[r]
    if n:
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in step_points(tl.x, tl.reserved))
        svg.append(f'<polyline points="{d}" fill="none" stroke="#000" stroke-dasharray="5,4" stroke-width="1">'
                   f'<title>reserved</title></polyline>')
    for k in range(6):                                  # y ticks
        v = ymax / 1.05 * k / 5
        y = Y(v)
        svg.append(f'<line x1="{L - 4}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v / scale:.1f}</text>')
    for k in range(6):                                  # x ticks
        v = xmax * k / 5
        x = X(v)
        svg.append(f'<line x1="{x:.1f}" y1="{T + ph}" x2="{x:.1f}" y2="{T + ph + 4}" stroke="#000"/>'
                   f'<text x="{x:.1f}" y="{T + ph + 16}" font-size="11" text-anchor="middle">{int(v)}</text>')
    svg.append(f'<text x="{L + pw / 2}" y="{H - 4}" font-size="12" text-anchor="middle">allocator event</text>'
               f'<text x="14" y="{T + ph / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {T + ph / 2})">memory ({unit})</text>'
               f'<line id="cursor" x1="0" y1="{T}" x2="0" y2="{T + ph}" stroke="#000" visibility="hidden"/>'
               '</svg>')

    legend = []
    for r, site in enumerate(tl.sites):
        pk = int(tl.series[r].max()) if n else 0
        legend.append(f'<tr><td><span class="sw" style="background:{colors[r]}"></span></td>'
                      f'<td class="site">{esc(site)}</td><td class="num">{esc(format_bytes(pk))}</td>'
                      f'<td class="num">{tl.counts.get(site, "")}</td>'
                      f'<td class="num">{esc(format_bytes(tl.totals[site])) if site in tl.totals else ""}</td></tr>')
    blocks = []
    for b in tl.blocks[:50]:
        blocks.append(f'<tr><td class="num">0x{b["address"]:x}</td><td class="num">{esc(format_bytes(b["size"]))}</td>'
                      f'<td>{esc(str(b["state"]))}</td><td class="site">{esc(str(b["site"]))}</td></tr>')

    data = {"device": tl.device, "sites": tl.sites, "colors": colors, "x": tl.x.tolist(),
            "time_us": tl.time_us.tolist(), "actions": tl.actions, "series": tl.series.tolist(),
            "reserved": tl.reserved.tolist(), "peaks": tl.peaks, "xmax": xmax,
            "plot": {"left": L, "top": T, "width": pw, "height": ph}}
    peak_total = int(total.max()) if n else 0
    title = title or f"ember CUDA memory, device {tl.device}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 18px; }} h2 {{ font-size: 15px; margin-top: 24px; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.site {{ font-family: ui-monospace, monospace; }}
.sw {{ display: inline-block; width: 12px; height: 12px; }}
#tip {{ position: absolute; display: none; background: #fff; border: 1px solid #999; padding: 4px 8px;
       font-size: 12px; pointer-events: none; box-shadow: 2px 2px 6px rgba(0,0,0,.2); }}
#wrap {{ position: relative; display: inline-block; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>Active memory after each allocator event, stacked by allocation site; the dashed line is reserved
memory. {len(tl.actions)} points shown; peak active {esc(format_bytes(peak_total))},
peak reserved {esc(format_bytes(int(tl.reserved.max()) if n else 0))}.</p>
<div id="wrap">{''.join(svg)}<div id="tip"></div></div>
<h2>Allocation sites</h2>
<table><tr><th></th><th>site</th><th>peak</th><th>allocations</th><th>bytes allocated</th></tr>
{''.join(legend)}</table>
<h2>Largest live blocks at the snapshot</h2>
<table><tr><th>address</th><th>size</th><th>state</th><th>site</th></tr>
{''.join(blocks)}</table>
<script id="ember-memory-data" type="application/json">{_json_for_script(data)}</script>
<script>
(function () {{
  var D = JSON.parse(document.getElementById("ember-memory-data").textContent);
  var svg = document.getElementById("plot"), tip = document.getElementById("tip");
  var cur = document.getElementById("cursor"), P = D.plot;
  function fmt(n) {{
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(n) >= 1024 && i < u.length - 1) {{ n /= 1024; i++; }}
    return (i ? n.toFixed(2) : n.toFixed(0)) + " " + u[i];
  }}
  function esc(s) {{ return String(s).replace(/[&<>"]/g, function (c) {{
    return {{"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}}[c]; }}); }}
  svg.addEventListener("mousemove", function (ev) {{
    var r = svg.getBoundingClientRect(), px = ev.clientX - r.left;
    if (px < P.left || px > P.left + P.width || !D.x.length) {{ tip.style.display = "none"; return; }}
    var xv = (px - P.left) / P.width * D.xmax, lo = 0, hi = D.x.length - 1;
    while (lo < hi) {{ var mid = (lo + hi + 1) >> 1; if (D.x[mid] <= xv) lo = mid; else hi = mid - 1; }}
    var rows = [], tot = 0;
    for (var s = D.sites.length - 1; s >= 0; s--) {{
      var v = D.series[s][lo]; tot += v;
      if (v) rows.push('<span class="sw" style="background:' + D.colors[s] + '"></span> ' + esc(D.sites[s]) + ": " + fmt(v));
    }}
    tip.innerHTML = "event " + D.x[lo] + " (" + esc(D.actions[lo]) + ")<br>active " + fmt(tot) +
      ", reserved " + fmt(D.reserved[lo]) + "<br>" + rows.join("<br>");
    tip.style.display = "block";
    tip.style.left = (px + 14) + "px"; tip.style.top = (ev.clientY - r.top + 10) + "px";
    cur.setAttribute("x1", px); cur.setAttribute("x2", px); cur.setAttribute("visibility", "visible");
  }});
  svg.addEventListener("mouseleave", function () {{
    tip.style.display = "none"; cur.setAttribute("visibility", "hidden"); }});
}})();
</script>
</body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return os.fspath(path)


# ---- entry points -------------------------------------------------------------------------------

def render(snapshot, png=None, html=None, device=None, by: str = "op", top: int = 12) -> Timeline:
    """Draw `snapshot` (a dict or a path) to `png` and/or `html` (paths; None skips); returns the Timeline."""
    tl = timeline(snapshot, device=device, by=by, top=top)
    if png is not None:
        write_png(tl, png)
    if html is not None:
        write_html(tl, html)
    return tl


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ember.cuda.memory_viz",
                                description="Draw an ember memory snapshot (ember.cuda.memory._dump_snapshot): "
                                            "active memory over time, stacked by allocation site, as PNG and HTML.")
    p.add_argument("snapshot", help="the snapshot JSON file")
    p.add_argument("-o", "--output", help="output path without suffix (default: the snapshot's); "
                                          "a .png or .html suffix is dropped")
    p.add_argument("--format", choices=("both", "png", "html"), default="both")
    p.add_argument("--by", choices=("op", "frame"), default="op",
                   help="stack by the allocating op (default; the top user frame when none) or by the top frame")
    p.add_argument("--device", type=int, default=None, help="the device's trace to draw (default: the first)")
    p.add_argument("--top", type=int, default=12, help="sites drawn apart; the rest are summed (default 12)")
    args = p.parse_args(argv)
    try:
        snap = load(args.snapshot)
        out = args.output or os.path.splitext(args.snapshot)[0]
        stem, ext = os.path.splitext(out)
        if ext.lower() in (".png", ".html"):
            out = stem
        png = out + ".png" if args.format in ("both", "png") else None
        html = out + ".html" if args.format in ("both", "html") else None
        tl = render(snap, png=png, html=html, device=args.device, by=args.by, top=args.top)
    except (OSError, ValueError) as e:
        print(f"memory_viz: {e}", file=sys.stderr)
        return 1
    for path in (png, html):
        if path is not None:
            print(path)
    peak = int(tl.total.max()) if len(tl.x) else 0
    print(f"device {tl.device}: {len(tl.x)} events, {len(tl.peaks)} sites, peak active {format_bytes(peak)}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
