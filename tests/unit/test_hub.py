"""speechkit.hub against a local HTTP server on 127.0.0.1 (no internet), plus checks of the shipped cards."""

import hashlib
import http.server
import re
import threading
import zipfile
from urllib.parse import urlsplit, urlunsplit

import pytest

from speechkit import hub

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []
    cut_after: int | None = None  # close the connection after this many bytes, once

    def do_GET(self):  # noqa: N802
        data = self.files.get(self.path)
        Handler.log.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_error(404)
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m:
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Handler.cut_after is not None:
            self.wfile.write(body[: Handler.cut_after])
            Handler.cut_after = None
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.log, Handler.cut_after = [], None
    yield urlunsplit(("http", f"127.0.0.1:{httpd.server_address[1]}", "", "", ""))
    httpd.shutdown()


@pytest.fixture
def cards(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHKIT_CARDS", str(tmp_path / "cards"))
    monkeypatch.setenv("SPEECHKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPEECHKIT_OFFLINE", raising=False)
    (tmp_path / "cards").mkdir()

    def write(text):
        (tmp_path / "cards" / "test.yaml").write_text(text)

    return write


def card(name, url, sha, extra=""):
    return (f"- name: {name}\n  kind: hubert\n  loader: speechkit.units.HubertFeatureReader\n  license: MIT\n{extra}"
            f"  files:\n    checkpoint: {{file: {name}.bin, url: {url}" + (f", sha256: {sha}}}\n" if sha else "}\n"))


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_verify_and_reuse_the_cache(server, cards, tmp_path):
    Handler.files = {"/m.bin": PAYLOAD}
    cards(card("m", f"{server}/m.bin", SHA))
    path = hub.fetch("m", progress=False)["checkpoint"]
    assert path == tmp_path / "cache" / "files" / "m.bin" and path.read_bytes() == PAYLOAD
    assert hub.is_cached(hub.load_card("m"))
    hub.fetch("m", progress=False)
    assert len(Handler.log) == 1  # the second call used the cache


def test_interrupted_download_resumes_with_a_range_request(server, cards):
    Handler.files = {"/m.bin": PAYLOAD}
    cards(card("m", f"{server}/m.bin", SHA))
    Handler.cut_after = 300_000
    with pytest.raises(hub.HubError, match="interrupted.*fetch again to resume"):
        hub.fetch("m", progress=False)
    path = hub.fetch("m", progress=False)["checkpoint"]
    assert path.read_bytes() == PAYLOAD
    assert Handler.log[1] == ("/m.bin", "bytes=300000-")


def test_checksum_mismatch_deletes_the_file_and_raises(server, cards, tmp_path):
    Handler.files = {"/m.bin": PAYLOAD[:-1] + b"x"}
    cards(card("m", f"{server}/m.bin", SHA))
    with pytest.raises(hub.ChecksumError, match="the partial file was deleted"):
        hub.fetch("m", progress=False)
    assert not any((tmp_path / "cache" / "files").iterdir())


def test_offline_error_says_which_file_goes_where(cards, tmp_path, monkeypatch):
    cards(card("m", urlunsplit(("https", "example.invalid", "/m.bin", "", "")), SHA))
    monkeypatch.setenv("SPEECHKIT_OFFLINE", "1")
    with pytest.raises(hub.OfflineError) as e:
        hub.fetch("m")
    msg = str(e.value)
    assert "card 'm' needs 'm.bin'" in msg and str(tmp_path / "cache" / "files" / "m.bin") in msg
    # placing the file there by hand is enough, still offline
    (tmp_path / "cache" / "files").mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache" / "files" / "m.bin").write_bytes(PAYLOAD)
    assert hub.fetch("m")["checkpoint"].read_bytes() == PAYLOAD


def test_no_network_is_an_offline_error(cards):
    cards(card("m", urlunsplit(("http", "127.0.0.1:9", "/m.bin", "", "")), None))  # port 9: nothing listens
    with pytest.raises(hub.OfflineError, match="no network"):
        hub.fetch("m", progress=False)


def test_file_urls_and_zip_cards(cards, tmp_path):
    src = tmp_path / "TWIST-tiny.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("TWIST-tiny/config.json", "{}")
    cards(card("z", src.as_uri(), None, extra="  unpack: zip\n"))
    folder = hub.fetch("z", progress=False)["checkpoint"]
    assert (folder / "config.json").read_text() == "{}"


def test_unknown_card_suggests_names(cards, server):
    cards(card("hubert-x", f"{server}/m.bin", SHA))
    with pytest.raises(hub.HubError, match="did you mean hubert-x"):
        hub.load_card("hubert-y")


def test_shipped_cards_are_complete():
    cards = hub.list_cards()
    names = {c.name for c in cards}
    kinds = {c.kind for c in cards}
    assert {"hubert", "speech-encoder", "vocoder", "unit-lm"} <= kinds
    for c in cards:
        assert c.loader.startswith("speechkit.") and c.license and c.files or c.path
        for f in c.files:
            assert f.url and urlsplit(f.url).scheme == "https"
            assert f.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", f.sha256)
        for r in c.requires + ((c.encoder,) if c.encoder else ()):
            assert r in names, (c.name, r)
    expresso = [c for c in cards if "expresso" in c.description.lower() and c.kind == "vocoder"]
    assert len(expresso) == 4 and all({"speakers", "styles"} <= {f.role for f in c.files} for c in expresso)
    assert "hubert-base-ls960-kmeans-100" in names and "TWIST-1.3B" in names


def test_speech_encoder_from_card_name(server, cards, tmp_path):
    """A quantizer card = its dense card + the k-means file, fetched and assembled by name."""
    import joblib
    import numpy as np
    import torch
    from sklearn.cluster import KMeans

    from speechkit.units import SpeechEncoder
    from tests.unit.units import fairseq_format as ff

    ff.write_fairseq_checkpoint(tmp_path / "dense.pt", "base", seed=1)
    joblib.dump(KMeans(n_clusters=5, n_init=1, random_state=0).fit(np.random.RandomState(0).randn(50, ff.DIM)),
                tmp_path / "km.bin")
    Handler.files = {"/dense.pt": (tmp_path / "dense.pt").read_bytes(), "/km.bin": (tmp_path / "km.bin").read_bytes()}
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in Handler.files.items()}
    cards(card("tiny-hubert", f"{server}/dense.pt", sha["/dense.pt"]) +
          "- name: tiny-hubert-kmeans-5\n  kind: speech-encoder\n  loader: speechkit.units.SpeechEncoder\n"
          "  license: MIT\n  requires: [tiny-hubert]\n  layer: 2\n  vocab_size: 5\n"
          f"  files:\n    kmeans: {{file: tiny-km5.bin, url: {server}/km.bin, sha256: {sha['/km.bin']}}}\n")
    enc = SpeechEncoder.from_pretrained("tiny-hubert-kmeans-5")
    assert enc.vocab_size == 5 and enc.reader.layer == 2
    out = enc(torch.randn(8000))
    assert out["units"].max() < 5
    with pytest.raises(hub.HubError, match="is a hubert, not a speech encoder"):
        SpeechEncoder.from_pretrained("tiny-hubert")


def _official_chain(server, cards, tmp_path, twist_arch: str | None = None):
    """Format-exact miniature releases served over loopback: a fairseq HuBERT + textlesslib km.bin (speech-encoder
    card), an Expresso-style CodeHiFiGAN (vocoder card) and, with ``twist_arch``, a TWIST zip (unit-lm card) over
    100 units. Returns the reference vocoder folder."""
    import io
    from pathlib import Path

    import joblib
    import numpy as np
    import torch
    from sklearn.cluster import KMeans

    from tests.unit.units import fairseq_format as ff

    ref = Path(__file__).resolve().parent.parent / "data" / "vocoders" / "expresso"
    ff.write_fairseq_checkpoint(tmp_path / "dense.pt", "base", seed=1)
    joblib.dump(KMeans(n_clusters=100, n_init=1, random_state=0).fit(np.random.RandomState(0).randn(300, ff.DIM)),
                tmp_path / "km.bin")
    Handler.files = {"/dense.pt": (tmp_path / "dense.pt").read_bytes(), "/km.bin": (tmp_path / "km.bin").read_bytes(),
                     **{f"/{n}": (ref / n).read_bytes() for n in ("g_00000000", "config.json", "speakers.txt",
                                                                     "styles.txt")}}
    if twist_arch is not None:  # TWIST releases: a zip holding one folder, an HF causal LM with config.offset
        from transformers import AutoModelForCausalLM

        from tests.unit.ulm.conftest import tiny_config

        torch.manual_seed(0)
        cfg = tiny_config(twist_arch, vocab_size=4 + 100)
        cfg.offset = 4
        AutoModelForCausalLM.from_config(cfg).save_pretrained(tmp_path / "TWIST-tiny")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for f in sorted((tmp_path / "TWIST-tiny").iterdir()):
                z.write(f, f"TWIST-tiny/{f.name}")
        Handler.files["/TWIST-tiny.zip"] = buf.getvalue()
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in Handler.files.items()}

    def entry(role, path):
        return f"    {role}: {{file: t{path.replace('/', '_')}, url: {server}{path}, sha256: {sha[path]}}}\n"

    text = (card("tiny-hubert", f"{server}/dense.pt", sha["/dense.pt"])
            + "- name: tiny-km100\n  kind: speech-encoder\n  loader: speechkit.units.SpeechEncoder\n  license: MIT\n"
              "  requires: [tiny-hubert]\n  layer: 2\n  vocab_size: 100\n  files:\n" + entry("kmeans", "/km.bin")
            + "- name: tiny-km100-hifigan\n  kind: vocoder\n  loader: speechkit.vocoders.CodeHiFiGANVocoder\n"
              "  license: MIT\n  encoder: tiny-km100\n  files:\n" + entry("checkpoint", "/g_00000000")
            + entry("config", "/config.json") + entry("speakers", "/speakers.txt") + entry("styles", "/styles.txt"))
    if twist_arch is not None:  # no checksum, like the real TWIST cards
        text += ("- name: TWIST-tiny\n  kind: unit-lm\n  loader: speechkit.ulm.UnitLM\n  license: MIT\n"
                 "  encoder: tiny-km100\n  vocab_size: 100\n  unpack: zip\n  files:\n"
                 f"    model: {{file: TWIST-tiny.zip, url: {server}/TWIST-tiny.zip}}\n")
    cards(text)
    return ref


def test_vocoder_and_resynthesizer_from_card_names(server, cards, tmp_path):
    """An Expresso-style vocoder card (generator + config + speakers + styles) and the encoder card it names."""
    import torch

    from speechkit.pipeline import Resynthesizer
    from speechkit.vocoders import CodeHiFiGANVocoder

    ref = _official_chain(server, cards, tmp_path)
    voc = CodeHiFiGANVocoder.from_pretrained("tiny-km100-hifigan")
    direct = CodeHiFiGANVocoder.from_pretrained(ref / "g_00000000", config_path=ref / "config.json")
    units = torch.randint(0, 100, (20,))
    assert torch.equal(voc(units, speaker="ex01", style=0), direct(units, speaker="ex01", style=0))
    rs = Resynthesizer.from_pretrained("tiny-km100-hifigan")
    out = rs(torch.randn(16000) * 0.1, sample_rate=16000, speaker="ex01", style=0)
    assert out.dim() == 1 and out.numel() > 0 and rs.output_sample_rate == 16000
    with pytest.raises(hub.HubError, match="is a speech-encoder, not a vocoder"):
        CodeHiFiGANVocoder.from_pretrained("tiny-km100")


def test_continuation_chain_from_card_names(server, cards, tmp_path):
    """The official TWIST chain by name (encoder + k-means card, TWIST zip card, vocoder card), fetched over loopback:
    the continuation extends the prompt's own units with the LM's greedy choice, and the audio is the vocoder's
    rendering of exactly those units."""
    import math

    import torch

    from speechkit import SpeechContinuation
    from speechkit.ulm import UnitLM
    from speechkit.units import SpeechEncoder
    from speechkit.vocoders import CodeHiFiGANVocoder

    _official_chain(server, cards, tmp_path, twist_arch="opt")
    sc = SpeechContinuation.from_pretrained(encoder="tiny-km100", ulm="TWIST-tiny", vocoder="tiny-km100-hifigan")
    assert sc.lm.vocab.layout == "twist" and sc.lm.num_units == sc.encoder.vocab_size == 100
    assert any(path == "/TWIST-tiny.zip" for path, _ in Handler.log)

    prompt = torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.1
    units = SpeechEncoder.from_pretrained("tiny-km100")(prompt)["units"]
    expected = UnitLM.from_pretrained(tmp_path / "TWIST-tiny").generate(units, max_new_tokens=8, temperature=0,
                                                                        stop_on_eos=False)
    new = sc.continue_units(units, 8, temperature=0, stop_on_eos=False)
    assert new.tolist() == expected.tolist() and len(new) == 8
    # seconds=0.5 asks for ceil(0.5 * units per second) new units; the audio renders prompt + continuation
    num_new = math.ceil(0.5 * len(units))
    out = sc(prompt, sample_rate=16000, seconds=0.5, temperature=0, speaker="ex01", style=0, stop_on_eos=False)
    voc = CodeHiFiGANVocoder.from_pretrained("tiny-km100-hifigan")
    whole = torch.cat([units, sc.continue_units(units, num_new, temperature=0, stop_on_eos=False)])
    assert torch.allclose(out, voc(whole, speaker="ex01", style=0, dur_prediction=True), atol=1e-6)
    # a bundle-only argument given a part's card is refused with the rule
    from speechkit.pipeline import PipelineError

    with pytest.raises(PipelineError, match="is a unit-lm; give a bundle"):
        SpeechContinuation.from_pretrained("TWIST-tiny")
