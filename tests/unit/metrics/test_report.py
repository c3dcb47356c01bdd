"""Report writing: PNG round trip, F0 contour SVG, JSON/CSV/HTML files with NaN handled."""

from __future__ import annotations

import json
import math
import struct
import zlib

import numpy as np

from speechkit.metrics.report import decode_png, encode_png, f0_svg, spectrogram_png, write_report


def test_png_round_trip_and_filtered_png():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(img)), img)
    # a PNG whose rows use the 'sub' and 'up' filters (as browsers write them) decodes to the same pixels
    raw = img.astype(np.int32)
    rows = []
    for y in range(7):
        if y % 2:
            rows.append(b"\x02" + ((raw[y] - raw[y - 1]) % 256).astype(np.uint8).tobytes())
        else:
            flat = raw[y].reshape(-1)
            sub = (flat - np.concatenate([np.zeros(3, int), flat[:-3]])) % 256
            rows.append(b"\x01" + sub.astype(np.uint8).tobytes())
    data = encode_png(img)
    start = data.index(b"IDAT") - 4
    end = data.index(b"IEND") - 4
    body = zlib.compress(b"".join(rows))
    chunk = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    assert np.array_equal(decode_png(data[:start] + chunk + data[end:]), img)


def test_spectrogram_shows_a_tone_at_its_frequency():
    sr = 16000
    t = np.arange(sr) / sr
    img = decode_png(spectrogram_png(np.sin(2 * np.pi * 2000 * t), sr, height=128))
    assert img.shape[0] == 128 and img.shape[1] > 100
    brightest_row = int(img.sum(axis=(1, 2)).argmax())
    assert abs(brightest_row - (128 - 1) * (1 - 2000 / 8000)) <= 3  # 2 kHz is a quarter of the way up


def test_f0_svg_breaks_at_unvoiced_frames():
    svg = f0_svg({"ref_times": [0, 0.1, 0.2, 0.3], "ref": [100, 0, 110, 120], "hyp_times": [0, 0.1], "hyp": [0, 0]})
    ref_path = svg.split('<path d="')[1].split('"')[0]
    assert ref_path.count("M") == 2 and ref_path.count("L") == 1
    assert "no voiced frames" in f0_svg({"ref_times": [0.0], "ref": [0], "hyp_times": [], "hyp": []})


def test_write_report_files(tmp_path):
    report = {"summary": {"num_files": 2, "wer": 0.25, "gpe": math.nan},
              "per_file": [{"id": "a<b", "wer": 0.5, "gpe": math.nan}, {"id": "c", "wer": 0.0}],
              "groups": {"By speaker": [{"group": "us1", "wer": 0.25}]}}
    page = write_report(tmp_path, report, title="t")
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["summary"] == {"num_files": 2, "wer": 0.25, "gpe": None}
    assert (tmp_path / "report.csv").read_text().splitlines() == ["id,wer,gpe", "a<b,0.5,", "c,0.0,"]
    html = page.read_text()
    assert "a&lt;b" in html and "By speaker" in html and "<script" not in html


def test_report_defines_its_metrics_and_says_what_made_it(tmp_path):
    """Every metric shown is defined with the direction that is better (and marked so in the tables); the page names
    the speechkit version, the date and the machine; F0 figures carry the pitch range they were measured in."""
    import html
    import re

    from speechkit import __version__
    from speechkit.metrics.report import METRICS

    report = {"summary": {"num_files": 1, "wer": 0.2, "speaker_sim": 0.9, "gpe": 0.0},
              "per_file": [{"id": "a", "wer": 0.2, "speaker_sim": 0.9, "gpe": 0.0}],
              "config": {"pitch": {"method": "yin", "fmin": 100.0, "fmax": 500.0}}}
    page = write_report(tmp_path, report, title="t").read_text()
    for metric in ("wer", "speaker_sim", "gpe"):
        definition, better = METRICS[metric]
        assert html.escape(definition) in page
        assert re.search(rf"<b>{metric}</b></td><td>[^<]*</td><td>{better} is better", page)
    assert "<th>wer ↓</th>" in page and "<th>speaker_sim ↑</th>" in page
    assert "dnsmos_ovrl" not in page  # only the metrics shown are defined
    assert "yin in 100.0-500.0 Hz" in page and "--f0-protocol wide" in page
    assert f"speechkit {__version__}" in page and " UTC" in page
    assert "provenance" not in json.loads((tmp_path / "report.json").read_text())  # the JSON stays comparable
