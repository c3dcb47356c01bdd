"""Evaluation reports: ``report.json`` (``summary`` + ``per_file``), ``report.csv`` (one row per file) and
``report.html`` (summary tables, then one row per file with audio players, F0 contours and spectrograms).

The HTML page has no scripts and no external resources: F0 contours are inline SVG, audio and spectrogram PNGs sit
in ``media/`` beside the page and are referenced by relative paths, so the report folder can be copied or served
as it is. PNGs are written by :func:`encode_png` (zlib, no imaging library).
"""

from __future__ import annotations

import csv
import html
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["write_report", "spectrogram_png", "encode_png", "decode_png", "f0_svg"]

# anchor colours of the spectrogram palette (dark blue -> purple -> orange -> pale yellow)
_PALETTE = np.array([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
                    dtype=np.float64)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an ``(height, width, 3)`` uint8 image (8-bit RGB, no filter, zlib level 6)."""
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (height, width, 3) uint8. Found shape {img.shape}")
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def decode_png(data: bytes) -> np.ndarray:
    """``(height, width, channels)`` uint8 pixels of a non-interlaced 8-bit RGB/RGBA/grey PNG (any filters), e.g.
    a browser screenshot."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG: bit depth {depth}, colour type {color}, interlace {interlace}")
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + w * channels)
    out = np.zeros((h, w * channels), dtype=np.int32)
    bpp = channels
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(w * channels, np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:  # sub, average, paeth depend on the reconstructed left neighbour: byte by byte
            cur = np.zeros_like(line)
            for x in range(len(line)):
                a = cur[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + pred) & 255
        out[y] = cur
    return out.reshape(h, w, channels).astype(np.uint8)


def spectrogram_png(wav: np.ndarray, sample_rate: int, *, height: int = 128, max_width: int = 600,
                    n_fft: int = 512, dynamic_range_db: float = 70.0) -> bytes:
    """A log-magnitude spectrogram (low frequencies at the bottom) as PNG bytes."""
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    hop = max(1, int(math.ceil(max(len(x) - n_fft, 1) / max_width)))
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1))[:, 1:]  # (frames, n_fft / 2)
    db = 20 * np.log10(mag + 1e-9)
    db = np.clip((db - (db.max() - dynamic_range_db)) / dynamic_range_db, 0, 1)
    rows = np.linspace(0, db.shape[1] - 1, height).round().astype(int)
    level = db[:, rows].T[::-1]  # (height, frames), low frequencies last
    pos = level * (len(_PALETTE) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_PALETTE) - 2)
    frac = (pos - lo)[..., None]
    rgb = _PALETTE[lo] * (1 - frac) + _PALETTE[lo + 1] * frac
    return encode_png(rgb.round().astype(np.uint8))


def f0_svg(f0: dict, *, width: int = 360, height: int = 110) -> str:
    """Inline SVG of reference (grey) and hypothesis (orange) F0 contours; unvoiced frames break the lines."""
    times = [t for key in ("ref_times", "hyp_times") for t in f0.get(key, [])]
    values = [v for key in ("ref", "hyp") for v in f0.get(key, []) if v > 0]
    if not times or not values:
        return '<span class="muted">no voiced frames</span>'
    t_max = max(times) or 1.0
    lo, hi = min(values) * 0.9, max(values) * 1.1
    pad = 26

    def path(ts, vs) -> str:
        parts, pen = [], "M"
        for t, v in zip(ts, vs, strict=False):
            if v <= 0:
                pen = "M"
                continue
            x = pad + (width - pad - 4) * t / t_max
            y = 4 + (height - 18) * (1 - (v - lo) / max(hi - lo, 1e-9))
            parts.append(f"{pen}{x:.1f},{y:.1f}")
            pen = "L"
        return " ".join(parts)

    return (f'<svg class="f0" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" fill="#fafafa"/>'
            f'<text x="2" y="12" font-size="9">{hi:.0f}</text><text x="2" y="{height - 16}" font-size="9">{lo:.0f}'
            f'</text><text x="{width - 30}" y="{height - 3}" font-size="9">{t_max:.1f}s</text>'
            f'<path d="{path(f0.get("ref_times", []), f0.get("ref", []))}" stroke="#777" fill="none" '
            f'stroke-width="1.5"/><path d="{path(f0.get("hyp_times", []), f0.get("hyp", []))}" stroke="#e8590c" '
            f'fill="none" stroke-width="1.5"/></svg>')


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return html.escape(str(v))


def _json_ready(obj):
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_ready(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f1f3f5}.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#888}
audio{width:240px;display:block;margin:2px 0}td.text{min-width:220px;max-width:360px}
img.spec{display:block;height:64px;width:240px;margin:2px 0}
.legend span{display:inline-block;width:12px;height:3px;margin:0 4px 3px 8px}"""

SCALAR_COLUMNS = ("wer", "cer", "gpe", "vde", "ffe", "f0_rmse", "f0_corr", "voiced_ref", "voiced_hyp", "speaker_sim",
                  "style_correct",
                  "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "genppl", "has_speech")


# metric -> (what it measures, which way is better); the report defines every metric it shows
METRICS: dict[str, tuple[str, str]] = {
    "wer": ("word error rate of the ASR transcript against the reference text (or the reference audio's ASR)",
            "lower"),
    "cer": ("character error rate, as WER on characters", "lower"),
    "gpe": ("gross pitch error: share of frames voiced in both whose F0 is off by more than 20%", "lower"),
    "vde": ("voicing decision error: share of frames voiced in one and not the other", "lower"),
    "ffe": ("F0 frame error: share of frames with a voicing or a gross pitch error", "lower"),
    "f0_rmse": ("RMS F0 difference in Hz over frames voiced in both", "lower"),
    "f0_corr": ("correlation of the two F0 contours over frames voiced in both", "higher"),
    "speaker_sim": ("cosine similarity of speaker embeddings (resemblyzer) of hypothesis and reference", "higher"),
    "style_correct": ("the style classifier names the intended style", "higher"),
    "dnsmos_ovrl": ("DNSMOS overall quality, 1-5 (a neural estimate of a listening-test MOS)", "higher"),
    "dnsmos_sig": ("DNSMOS speech signal quality, 1-5", "higher"),
    "dnsmos_bak": ("DNSMOS background noise quality, 1-5", "higher"),
    "dnsmos_p808": ("DNSMOS P.808 quality, 1-5", "higher"),
    "genppl": ("perplexity of the ASR transcript under a text LM: whether the speech says something", "lower"),
    "has_speech": ("the VAD finds speech in the file", "higher"),
    "voiced_ref": ("share of the reference's frames the F0 tracker finds voiced in its range (near 0 for speech: "
                   "a voice outside the range, and F0 errors that read low)", "neither"),
    "voiced_hyp": ("share of the hypothesis' frames the F0 tracker finds voiced in its range", "neither"),
    "asr_nonempty": ("the ASR transcript is not empty", "higher"),
}
_ARROW = {"lower": "↓", "higher": "↑"}


def _head(k: str) -> str:
    arrow = _ARROW.get(METRICS.get(k, ("", ""))[1], "")
    return f"<th>{html.escape(k)}{(' ' + arrow) if arrow else ''}</th>"


def _definitions(shown: list[str]) -> str:
    rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(METRICS[k][0])}</td>"
                   f"<td>{METRICS[k][1] + ' is better' if METRICS[k][1] != 'neither' else ''}</td></tr>"
                   for k in shown if k in METRICS)
    return f"<h2>Metrics</h2><table>{rows}</table>" if rows else ""


def _provenance() -> str:
    """speechkit version, git commit (in a checkout), date and machine: which code made the figures, where."""
    import datetime
    import subprocess

    from speechkit import __version__

    commit = ""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from speechkit.precision import machine_line

        machine = machine_line()
    except Exception:  # noqa: BLE001 - the footer never fails a report
        machine = ""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    bits = [f"speechkit {__version__}"] + ([f"commit {commit}"] if commit else []) + [when] + \
        ([machine] if machine else [])
    return f'<p class="muted">{html.escape(" · ".join(bits))}</p>'


def _table(title: str, rows: list[dict]) -> str:
    keys = [k for k in rows[0] if k != "group"] if rows else []
    head = "<th></th>" + "".join(_head(k) for k in keys)
    body = "".join("<tr><td>" + html.escape(str(r.get("group", ""))) + "</td>" +
                   "".join(f'<td class="num">{_fmt(r[k])}</td>' for k in keys) + "</tr>" for r in rows)
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _file_row(r: dict, columns: list[str]) -> str:
    media = r.get("media", {})
    cells = [f"<td><b>{html.escape(r['id'])}</b>"]
    for side in ("ref", "hyp"):
        if f"{side}_audio" in media:
            label = "reference" if side == "ref" else "hypothesis"
            cells.append(f'<div class="muted">{label}</div><audio controls preload="none" '
                         f'src="{html.escape(media[side + "_audio"])}"></audio>'
                         f'<img class="spec" alt="{label} spectrogram" '
                         f'src="{html.escape(media[side + "_spectrogram"])}">')
    cells.append("</td>")
    cells.append(f"<td>{f0_svg(media['f0']) if 'f0' in media else ''}</td>")
    text = "".join(f'<div><span class="muted">{k}:</span> {html.escape(str(r[k]))}</div>'
                   for k in ("text", "prompt", "asr", "style", "predicted_style") if r.get(k))
    cells.append(f'<td class="text">{text}</td>')
    cells += [f'<td class="num">{_fmt(r.get(c, math.nan))}</td>' for c in columns]
    return "<tr>" + "".join(cells) + "</tr>"


def write_report(out: Path, report: dict, *, title: str = "speechkit evaluation") -> Path:
    """Writes ``report.json``, ``report.csv`` and ``report.html`` under ``out``; returns the HTML path.

    ``report`` holds ``summary`` (metric -> value), ``per_file`` (rows; a row's ``media`` dict names its audio,
    spectrograms and F0 contours) and optionally ``groups`` (title -> list of rows with a ``group`` key),
    ``sections`` (title -> more file rows, shown after the files, e.g. the demo's continuation) and ``config``.
    NaN becomes ``null`` in JSON and an empty cell in CSV.
    """
    from speechkit.utils.files import atomic_open

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "report.json") as f:
        json.dump(_json_ready(report), f, indent=2)
    rows = report["per_file"]
    flat = [{k: v for k, v in r.items() if k != "media"} for r in rows]
    fields = list(dict.fromkeys(k for r in flat for k in r))
    with atomic_open(out / "report.csv", "w") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in flat:
            w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
    columns = [c for c in SCALAR_COLUMNS if any(c in r for r in rows)]
    summary = {"group": "all", **report["summary"]}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>", _table("Summary", [summary])]
    for name, group_rows in report.get("groups", {}).items():
        if group_rows:
            parts.append(_table(name, group_rows))
    parts.append('<h2>Files</h2><p class="legend">F0: <span style="background:#777"></span>reference '
                 '<span style="background:#e8590c"></span>hypothesis</p>')
    parts.append("<table><tr><th>file and audio</th><th>F0 contour (Hz)</th><th>text</th>"
                 + "".join(_head(c) for c in columns) + "</tr>")
    parts += [_file_row(r, columns) for r in rows]
    parts.append("</table>")
    for name, section_rows in report.get("sections", {}).items():
        cols = [c for c in SCALAR_COLUMNS if any(c in r for r in section_rows)]
        parts.append(f"<h2>{html.escape(name)}</h2><table><tr><th>file and audio</th><th>F0 contour (Hz)</th>"
                     "<th>text</th>" + "".join(_head(c) for c in cols) + "</tr>")
        parts += [_file_row(r, cols) for r in section_rows]
        parts.append("</table>")
    shown = list(dict.fromkeys([*report["summary"], *columns]))
    parts.append(_definitions(shown))
    pitch = (report.get("config") or {}).get("pitch") if isinstance(report.get("config"), dict) else None
    if any(k in shown for k in ("gpe", "vde", "ffe", "f0_rmse", "f0_corr")) and isinstance(pitch, dict):
        parts.append(f'<p class="muted">F0 by {html.escape(str(pitch.get("method", "")))} in '
                     f'{_fmt(pitch.get("fmin"))}-{_fmt(pitch.get("fmax"))} Hz: voices below the range (low male '
                     "voices under the fairseq protocol's 100 Hz) are seen as unvoiced, so their F0 errors read low "
                     "(voiced_ref shows it); --f0-protocol wide starts at 50 Hz.</p>")
    parts.append(_provenance())
    parts.append("</body></html>")
    with atomic_open(out / "report.html") as f:
        f.write("\n".join(parts))
    return out / "report.html"
