"""Attention figures of one record: head grid, bulk attention, matrices, animation, bertviz.

Follows the case study's Figs. 8-10 (Linville, "Exploring Foundation Models for Seismic
Event Processing"): bertviz head/model views (Fig. 8), all heads of one layer attending
from one time step (Fig. 9), and attention summed over layers and heads coloured along
the waveform, red high and blue low, with TauP ak135 arrivals (Fig. 10), here beside
attention rollout and animated over every query step. Every time axis is in seconds
after the record's P pick. Inputs are :class:`seisbert.analysis.attention.RecordView`.
"""

from __future__ import annotations

import functools
import html
import json
import logging
from pathlib import Path

import numpy as np

from seisbert.analysis.attention import RecordView
from seisbert.figures import pyplot, save_figure

log = logging.getLogger(__name__)

RATIO_RANGE = (1 / 8, 8.0)  # colour scale of attention / uniform: a factor 8 either way
BERTVIZ_HINT = "pip install bertviz (or pip install -e .[viz])"


# ------------------------------------------------------------------------ drawing parts
def _extent_s(view: RecordView) -> tuple[float, float]:
    return -view.pre_s, view.n_steps * view.window_s - view.pre_s


def _ratio_norm():
    from matplotlib.colors import LogNorm

    return LogNorm(*RATIO_RANGE, clip=True)


def _ratio_colorbar(fig, mappable, **kw):
    """Colour bar of attention / uniform with ticks at powers of two."""
    ticks = 2.0 ** np.arange(np.log2(RATIO_RANGE[0]), np.log2(RATIO_RANGE[1]) + 1)
    cbar = fig.colorbar(mappable, ticks=ticks, **kw)
    cbar.ax.set_yticklabels([f"{t:g}" if t >= 1 else f"1/{1 / t:g}" for t in ticks], fontsize=7)
    cbar.ax.minorticks_off()
    cbar.set_label("attention ÷ uniform (1/T)", fontsize=8)
    return cbar


def _ratio_cmap():
    """Blue (low) - grey (uniform) - red (high): unlike coolwarm, the middle shows on white."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(
        "attention", ["#1f4e9c", "#6f8fc4", "#8c8c8c", "#d9735f", "#b40f20"]
    )


def display_trace(view: RecordView, max_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Times (s after P) and the waveform band-passed to the PSD band, scaled to max 1.

    Only the tokenised span is kept. ``max_points`` thins it to per-bin min/max pairs,
    which keeps the envelope (for the animation's small frames).
    """
    from scipy.signal import butter, sosfiltfilt

    lo, hi = _extent_s(view)
    t = (np.arange(len(view.waveform)) - view.p_sample) / view.sampling_rate_hz
    f = view.frequencies_hz if view.frequencies_hz is not None else np.array([1.0, 20.0])
    nyq = view.sampling_rate_hz / 2
    sos = butter(
        4,
        [max(f.min(), 0.05), min(f.max(), 0.9 * nyq)],
        "bandpass",
        fs=view.sampling_rate_hz,
        output="sos",
    )
    y = sosfiltfilt(sos, np.nan_to_num(view.waveform - np.nanmean(view.waveform)))  # NaN: no data
    keep = (t >= lo) & (t < hi)
    t, y = t[keep], y[keep] / max(np.abs(y[keep]).max(), 1e-30)
    if max_points is not None and len(t) > max_points:
        k = int(np.ceil(2 * len(t) / max_points))
        n = len(t) // k * k
        tb, yb = t[:n].reshape(-1, k), y[:n].reshape(-1, k)  # (bins, k)
        t = np.repeat(tb.mean(1), 2)
        y = np.stack([yb.min(1), yb.max(1)], 1).ravel()
    return t, y


def _waveform_line(ax, view: RecordView, values: np.ndarray, max_points: int | None = None):
    """The waveform as a line coloured by ``values`` (T,) of the window each sample is in."""
    from matplotlib.collections import LineCollection

    lo, hi = _extent_s(view)
    if view.waveform is None:  # no records artifact: a flat line still carries the colours
        t = np.linspace(lo, hi, 10 * view.n_steps + 1)
        y = np.zeros_like(t)
    else:
        t, y = display_trace(view, max_points)
    step = np.clip(
        ((t[:-1] + view.pre_s) // view.window_s).astype(int), 0, view.n_steps - 1
    )  # (S-1,)
    points = np.stack([t, y], 1)[:, None, :]  # (S, 1, 2)
    lines = LineCollection(
        np.concatenate([points[:-1], points[1:]], 1),
        cmap=_ratio_cmap(),
        norm=_ratio_norm(),
        linewidth=0.8,
    )
    lines.set_array(values[step])
    lines.step_index = step  # the animation recolours with values[step]
    ax.add_collection(lines)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-1.08, 1.08)
    f = view.frequencies_hz
    band = f"{f.min():.0f}-{f.max():.0f} Hz " if f is not None else ""
    ax.set_ylabel(f"{band}velocity\n/ max", fontsize=8)
    return lines


def _psd_image(ax, view: RecordView, cax=None):
    plt = pyplot()
    lo, hi = _extent_s(view)
    freqs = view.frequencies_hz
    f_ok = freqs is not None and len(freqs) == view.psd.shape[1] and np.all(np.diff(freqs) > 0)
    ylo, yhi = (freqs[0] - 0.5, freqs[-1] + 0.5) if f_ok else (-0.5, view.psd.shape[1] - 0.5)
    im = ax.imshow(
        view.psd.T,
        origin="lower",
        aspect="auto",
        extent=(lo, hi, ylo, yhi),
        cmap="viridis",
        interpolation="nearest",
    )
    ax.set_ylabel("frequency (Hz)" if f_ok else "PSD bin", fontsize=8)
    cbar = (
        plt.colorbar(im, cax=cax)
        if cax is not None
        else plt.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
    )
    cbar.set_label("scaled PSD", fontsize=8)
    return im


def _label_groups(arrivals: dict, min_gap_s: float) -> list[tuple[float, str]]:
    """Arrival labels, joining those closer than ``min_gap_s`` so the texts do not overlap."""
    groups: list[list] = []
    for name, t in sorted(arrivals.items(), key=lambda kv: kv[1]):
        if groups and t - groups[-1][0] < min_gap_s:
            groups[-1][1].append(name)
        else:
            groups.append([t, [name]])
    return [(t, ", ".join(names)) for t, names in groups]


def _arrival_lines(ax, view: RecordView, label: bool):
    """TauP arrivals as vertical lines (P family solid, S family dashed), the P pick dotted,
    and the metadata's true arrivals (synthetic records) as magenta triangles on top."""
    ax.axvline(0.0, color="0.3", lw=0.8, ls=":")
    for name, t in view.arrivals.items():
        ax.axvline(t, color="k", lw=0.9, ls="--" if name[0] in "sS" else "-", alpha=0.8)
    if not label:
        return
    for t, text in _label_groups(view.arrivals, min_gap_s=2.5 * view.window_s):
        ax.text(
            t,
            1.02,
            text,
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            ha="left",
            va="bottom",
            rotation=30,
            rotation_mode="anchor",
        )
    trans = ax.get_xaxis_transform()
    for name, t in view.truth.items():
        ax.plot([t], [1.0], "v", color="m", ms=6, transform=trans, clip_on=False)
        ax.text(t + 0.4, 0.97, name.split()[0], color="m", fontsize=6, transform=trans, va="top")


def _query_band(ax, view: RecordView, query: int, animated: bool = False):
    """A translucent band over the query window; returned so the animation can move it."""
    start = view.step_start_s[query]
    return ax.axvspan(
        start, start + view.window_s, color="gold", alpha=0.5, lw=0, zorder=0, animated=animated
    )


def _legend_text(view: RecordView) -> str:
    parts = ["TauP ak135: P family solid, S family dashed", "dotted: P pick"]
    if view.truth:
        parts.append("magenta \u25bc: metadata " + ", ".join(view.truth))
    return "; ".join(parts)


def _query_label(view: RecordView, query: int) -> str:
    return f"query t={query + 1} ({view.step_start_s[query]:+.0f} s after P)"


# -------------------------------------------------------------------------- bulk view
def _stacked_axes(ratios: list[float], height: float, dpi: int = 100):
    """A column of x-sharing axes plus a narrow right column for colour bars (aligned x)."""
    plt = pyplot()
    fig = plt.figure(figsize=(11, height), dpi=dpi)
    gs = fig.add_gridspec(
        len(ratios),
        2,
        height_ratios=ratios,
        width_ratios=[60, 1],
        hspace=0.3,
        wspace=0.02,
        left=0.08,
        right=0.93,
        top=1 - 1.1 / height,
        bottom=0.6 / height,
    )
    axes = [fig.add_subplot(gs[0, 0])]
    axes += [fig.add_subplot(gs[i, 0], sharex=axes[0]) for i in range(1, len(ratios))]
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    return fig, axes, gs


def _bulk_figure(
    view: RecordView,
    query: int,
    dpi: int = 100,
    max_points: int | None = None,
    animated: bool = False,
):
    """Fig. 10 layout; returns (figure, update(query) -> changed artists) for the animation.

    With ``animated`` the changing artists are left out of ``canvas.draw()`` (blitting).
    """
    total = (
        view.spectral.sum(axis=(0, 1)) * view.n_steps / np.prod(view.attention.shape[:2])
    )  # (T, T) / uniform
    roll = view.rollout() * view.n_steps  # (T, T) / uniform
    has_psd = view.psd is not None
    fig, axes, gs = _stacked_axes([3, 3, 2] + [2] * has_psd, 8.5 if has_psd else 6.5, dpi)
    bands = [_query_band(ax, view, query, animated) for ax in axes]
    sum_line = _waveform_line(axes[0], view, total[query], max_points)
    roll_line = _waveform_line(axes[1], view, roll[query], max_points)
    axes[0].set_title("summed attention over all layers and heads", fontsize=9, loc="left", pad=26)
    axes[1].set_title("attention rollout (Abnar & Zuidema 2020)", fontsize=9, loc="left")
    centres = view.step_start_s + view.window_s / 2
    (p_sum,) = axes[2].step(centres, total[query], where="mid", color="tab:red", label="summed")
    (p_roll,) = axes[2].step(centres, roll[query], where="mid", color="tab:blue", label="rollout")
    axes[2].set_yscale("log")
    axes[2].set_ylim(min(total.min(), roll.min(), 0.1) * 0.8, max(total.max(), roll.max()) * 1.3)
    axes[2].axhline(1.0, color="0.5", lw=0.6)
    axes[2].set_ylabel("attention\n÷ uniform", fontsize=8)
    axes[2].legend(fontsize=7, loc="upper right", ncol=2)
    if has_psd:
        _psd_image(axes[3], view, fig.add_subplot(gs[3, 1]))
    for i, ax in enumerate(axes):
        _arrival_lines(ax, view, label=i == 0)
    _ratio_colorbar(fig, sum_line, cax=fig.add_subplot(gs[:2, 1]))
    axes[-1].set_xlabel("time after P pick (s)", fontsize=9)
    fig.text(0.08, 0.01, _legend_text(view), fontsize=7, color="0.3")
    title = fig.suptitle("", fontsize=10, animated=animated)
    moving = [*bands, sum_line, roll_line, p_sum, p_roll, title]
    for artist in moving:
        artist.set_animated(animated)

    def update(q: int):
        sum_line.set_array(total[q][sum_line.step_index])
        roll_line.set_array(roll[q][roll_line.step_index])
        p_sum.set_ydata(total[q])
        p_roll.set_ydata(roll[q])
        for band in bands:  # axvspan is a Rectangle (matplotlib >= 3.9)
            band.set_x(view.step_start_s[q])
        title.set_text(f"{view.title()}\n{_query_label(view, q)}")
        return moving

    update(query)
    return fig, update


def plot_bulk_attention(view: RecordView, query: int, path: Path) -> Path:
    """Fig. 10: summed attention and rollout from ``query`` (0-based step) along the waveform."""
    fig, _ = _bulk_figure(view, query)
    return save_figure(fig, path)


def animate_bulk_attention(
    view: RecordView, path: Path, fps: float = 4.0, dpi: int = 72, max_points: int = 2000
) -> Path:
    """GIF of the bulk view, one frame per query step t = 1..T.

    Blitted: the static parts are drawn once and each frame redraws only the moving
    artists (a full redraw per frame, as ``FuncAnimation`` + ``PillowWriter`` do, is ~10x
    slower); the frames are written with Pillow as ``PillowWriter`` does.
    """
    from PIL import Image

    plt = pyplot()
    fig, update = _bulk_figure(view, 0, dpi=dpi, max_points=max_points, animated=True)
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    frames = []
    for q in range(view.n_steps):
        fig.canvas.restore_region(background)
        for artist in update(q):
            fig.draw_artist(artist)
        frames.append(
            Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba())
            .convert("RGB")
            .quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        )
    plt.close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    log.debug("wrote %s (%d frames)", path, len(frames))
    return path


# --------------------------------------------------------------------------- head grid
def plot_head_grid(view: RecordView, layer: int, query: int, path: Path) -> Path:
    """Fig. 9: every head of ``layer`` attending from ``query`` (0-based), over waveform and PSD."""
    plt = pyplot()
    att = view.spectral[layer, :, query]  # (heads, T)
    share = view.attention[layer, :, query + 1][:, [0, -1]].sum(-1)  # (heads,) on [CLS]/[SEP]
    n_heads, has_psd = len(att), view.psd is not None
    fig, axes, gs = _stacked_axes(
        [2.5] + [2] * has_psd + [1] * n_heads, 3 + 0.9 * n_heads + 2 * has_psd
    )
    _waveform_line(axes[0], view, att.sum(0) * view.n_steps / n_heads).set_color("0.2")
    if has_psd:
        _psd_image(axes[1], view, fig.add_subplot(gs[1, 1]))
    centres = view.step_start_s + view.window_s / 2
    top = att.max() * 1.1
    for h, ax in enumerate(axes[1 + has_psd :]):
        ax.bar(
            centres,
            att[h],
            width=view.window_s * 0.9,
            color=plt.cm.Reds(0.35 + 0.65 * att[h] / top),
        )
        ax.set_ylim(0, top)
        ax.set_ylabel(
            f"head {h}\n({share[h]:.0%} on\n[CLS]/[SEP])",
            rotation=0,
            ha="right",
            va="center",
            fontsize=7,
        )
        ax.tick_params(labelsize=7)
    for i, ax in enumerate(axes):
        _query_band(ax, view, query)
        _arrival_lines(ax, view, label=i == 0)
    axes[0].set_title(
        f"{view.title()}\nlayer {layer}, all heads, {_query_label(view, query)}; "
        "bars: attention weight over the T windows (renormalised without [CLS]/[SEP])",
        fontsize=9,
        pad=24,
    )
    axes[-1].set_xlabel("time after P pick (s)", fontsize=9)
    fig.text(0.08, 0.01, _legend_text(view), fontsize=7, color="0.3")
    return save_figure(fig, path)


def plot_attention_matrices(view: RecordView, path: Path) -> Path:
    """Every layer x head attention matrix over the T windows (query rows, key columns)."""
    plt = pyplot()
    att = view.spectral  # (layers, heads, T, T)
    n_layers, n_heads = att.shape[:2]
    lo, hi = _extent_s(view)
    fig, axes = plt.subplots(
        n_layers,
        n_heads,
        figsize=(2.3 * n_heads + 1, 2.3 * n_layers + 0.6),
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for (layer, h), ax in np.ndenumerate(axes):
        im = ax.imshow(
            att[layer, h] * view.n_steps,
            origin="upper",
            extent=(lo, hi, hi, lo),
            cmap="coolwarm",
            norm=_ratio_norm(),
            interpolation="nearest",
        )
        for t in [0.0, *view.arrivals.values()]:
            ax.axvline(t, color="k", lw=0.4, alpha=0.6)
        ax.set_title(f"layer {layer} head {h}", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("key: s after P", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("query: s after P", fontsize=7)
    _ratio_colorbar(fig, im, ax=axes, fraction=0.02)
    fig.suptitle(
        f"{view.title()}: attention of every layer and head (lines: P pick and TauP arrivals)",
        fontsize=10,
    )
    return save_figure(fig, path, dpi=110)


# ----------------------------------------------------------------------------- bertviz
@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    """A missing optional package is said once per process, not once per record."""
    log.warning("%s", message)


def _bertviz():
    try:
        import bertviz
    except ImportError as err:
        raise ImportError(
            f"the bertviz export needs the optional package bertviz: {BERTVIZ_HINT}"
        ) from err
    return bertviz


def export_bertviz(view: RecordView, out_dir: Path) -> list[Path]:
    """bertviz ``head_view`` and ``model_view`` HTML of the full sequence, tokens labelled
    ``t07:s12`` (token 7 in the window starting 12 s after P). The pages load d3/jQuery
    from a CDN when opened. Raises ImportError naming the install command without bertviz."""
    import torch

    bertviz = _bertviz()
    rounded = np.round(view.attention.astype(np.float64), 4)  # 4 decimals: pages 5x smaller
    attention = [torch.from_numpy(layer)[None] for layer in rounded]  # layers x (1, heads, L, L)
    labels, out = view.labels(), []
    for name, fn in (("head_view", bertviz.head_view), ("model_view", bertviz.model_view)):
        page = fn(attention=attention, tokens=labels, html_action="return").data
        path = Path(out_dir) / f"{name}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(view.title())}"
            f"</title></head><body><h3>{html.escape(view.title())}</h3>{page}</body></html>"
        )
        out.append(path)
        log.debug("wrote %s", path)
    return out


# ------------------------------------------------------------------------------ batch
def write_record_views(
    view: RecordView,
    out_dir: Path,
    layer: int,
    query: int,
    animate: bool = True,
    bertviz: bool = True,
    fps: float = 4.0,
) -> dict[str, Path]:
    """All views of one record into ``out_dir``; bertviz skipped (logged) when not installed."""
    out_dir = Path(out_dir)
    files = {
        "bulk": plot_bulk_attention(view, query, out_dir / f"bulk_t{query + 1:02d}.png"),
        "heads": plot_head_grid(
            view, layer, query, out_dir / f"heads_l{layer}_t{query + 1:02d}.png"
        ),
        "matrices": plot_attention_matrices(view, out_dir / "matrices.png"),
    }
    if animate:
        files["animation"] = animate_bulk_attention(view, out_dir / "bulk.gif", fps)
    if bertviz:
        try:
            head, model = export_bertviz(view, out_dir)
            files.update(head_view=head, model_view=model)
        except ImportError as err:
            _warn_once(str(err))
    (out_dir / "view.json").write_text(
        json.dumps(
            {"meta": view.meta, "taup_after_p_s": view.arrivals, "metadata_after_p_s": view.truth},
            indent=2,
            default=str,
        )
    )
    return files


def write_index(entries: list[tuple[RecordView, dict[str, Path]]], out_dir: Path) -> Path:
    """``index.html``: one row per record (class, ids, distance, depth) linking its views."""
    out_dir = Path(out_dir)
    rows = []
    for view, files in entries:
        m = view.meta
        links = " · ".join(
            f"<a href='{html.escape(str(p.relative_to(out_dir)))}'>{k.replace('_', ' ')}</a>"
            for k, p in files.items()
        )
        thumb = html.escape(str(files["bulk"].relative_to(out_dir)))
        cells = [
            m.get("source_type", m.get("label")),
            m.get("event_id"),
            m.get("station_id"),
            _fmt(m.get("path_ep_distance_km")),
            _fmt(m.get("source_depth_km")),
            _fmt(m.get("source_magnitude")),
        ]
        rows.append(
            "<tr>"
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
            + f"<td>{links}</td><td><a href='{thumb}'><img src='{thumb}' width='360'></a></td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "class",
            "event",
            "station",
            "distance (km)",
            "depth (km)",
            "magnitude",
            "views",
            "bulk attention",
        )
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>seisbert attention</title>"
        "<style>td,th{padding:4px 8px;border-bottom:1px solid #ddd;"
        "font-family:sans-serif;font-size:13px}"
        "</style></head><body><h2>Attention views</h2><table><tr>"
        + head
        + "</tr>"
        + "\n".join(rows)
        + "</table></body></html>"
    )
    path = out_dir / "index.html"
    path.write_text(page)
    log.info("wrote %s", path)
    return path


def _fmt(value) -> str:
    return (
        f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"
    )
