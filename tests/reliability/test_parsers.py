"""Property-based fuzzing (hypothesis) of every text format speechkit parses.

For each parser: a valid example, then hypothesis-generated variants (arbitrary text, arbitrary bytes, and the valid
example mutated line by line: characters dropped or inserted, fields swapped, numbers made huge, negative, NaN).
The rule (``tests/reliability/faults.py``): the parser returns, or raises a SpeechkitError naming the file; never
another exception, never a hang. ``make fuzz`` runs 20x the examples with a random seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from speechkit.errors import SpeechkitError
from tests.reliability.faults import Hang, Tally, deadline, iterations, record

FUZZ = dict(max_examples=iterations(40), deadline=None, derandomize="SPEECHKIT_FUZZ_SCALE" not in os.environ,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], database=None)

INTERESTING = ["\t", "\n", "\r", "\x00", " ", "{", "}", "[", "]", '"', ",", ":", "-", "-1", "0", "1e309", "nan",
               "NaN", "Infinity", "99999999999999999999", "é", "\ufeff", "\udcff", "(", ")", "s", "/", "..", "#"]


@st.composite
def mutated(draw, valid: str) -> str:
    """``valid`` with a few line-level and character-level edits."""
    lines = valid.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["insert", "delete", "replace", "dup", "drop", "swap", "cut"]))
        line = lines[i]
        j = draw(st.integers(0, len(line)))
        if op == "insert":
            lines[i] = line[:j] + draw(st.sampled_from(INTERESTING)) + line[j:]
        elif op == "delete":
            lines[i] = line[:j] + line[j + 1:]
        elif op == "replace":
            lines[i] = line[:j] + draw(st.sampled_from(INTERESTING)) + line[j + 2:]
        elif op == "dup":
            lines.insert(i, line)
        elif op == "drop":
            del lines[i]
        elif op == "swap":
            parts = line.split("\t")
            lines[i] = "\t".join(reversed(parts))
        else:
            lines[i] = line[:j]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


def contents(valid: str):
    """File contents to try: mutated valid text (most), any text, any bytes."""
    text = st.one_of(mutated(valid), mutated(valid), mutated(valid), st.text(max_size=200))
    return st.one_of(text.map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary(max_size=200))


def keeps_rule(call, names: list[str]) -> None:
    case = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0].removeprefix("test_")
    try:
        with deadline(30):
            call()
    except SpeechkitError as e:
        assert any(str(n) in str(e) for n in names), f"the error does not name the file: {e}"
        record("parsers (hypothesis)", case, Tally(cases=1, refused=1))
    except Hang as e:
        pytest.fail(f"hang: {e}")
    else:
        record("parsers (hypothesis)", case, Tally(cases=1, loaded=1))


def case(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


# --------------------------------------------------------------------------------------------- the parsers
TSV = "/data/audio\na.wav\t16000\nsub/b.flac\t48000\n"
UNITS = ('{"id": "a", "audio": "a.wav", "units": [1, 2, 3], "duration": [2, 1, 4]}\n'
         '{"id": "b", "audio": "b.wav", "units": [5], "f0": [[110.0]]}\n')
TRANSCRIPTS = "# stem<TAB>text\nu1\tthe cat sat\nu2\ton the mat\n"
NAMES = "us1\nus2\nen1\n"
SPLIT = "ex01_default_00001\nex02_confused_00002\t(0.5s,12.0s)\nex03-ex01_angry\t(,30.0s)\n"
VAD = "ex01_default_00001\t(0.1, 1.5) (2.0, 3.25)\nex03-ex01_angry_001/channel1\t(0.0, 4.0)\n"
READ_TX = "ex01_default_00001\tThe red box.\nex02_confused_00002\tBring it here.\n"
PREPARED = '{"id": "a", "speaker": "ex01", "style": "default"}\n{"id": "b", "speaker": "ex02"}\n'
CARD = ("- name: tiny-hubert\n  kind: dense\n  files:\n    checkpoint: {file: tiny.pt, sha256: '00'}\n"
        "- name: tiny-km\n  kind: speech-encoder\n  requires: [tiny-hubert]\n  layer: 6\n"
        "  files: {kmeans: km.bin}\n")
PHONES = "sil\na\nb\nsh\n"


# one-file text formats: (file name, a valid example); _parser gives the call for the same key
TEXT_FILES = {"fairseq tsv": ("train.tsv", TSV), "units jsonl": ("units.jsonl", UNITS),
              "unit-LM training data": ("train.jsonl", UNITS), "transcripts": ("texts.tsv", TRANSCRIPTS),
              "speaker list": ("speakers.txt", NAMES), "phone inventory": ("phones.txt", PHONES),
              "prepared manifest": ("test.jsonl", PREPARED)}


def _parser(kind: str):
    from speechkit.data.datasets import read_prepared
    from speechkit.data.manifest import read_tsv, read_units_jsonl
    from speechkit.data.phones import PhoneInventory
    from speechkit.metrics.folder import read_transcripts
    from speechkit.ulm.data import read_unit_sequences
    from speechkit.vocoders.hifigan.inference import read_names

    return {"fairseq tsv": read_tsv, "units jsonl": read_units_jsonl,
            "unit-LM training data": lambda p: read_unit_sequences(p, deduplicate=True),
            "transcripts": read_transcripts, "speaker list": lambda p: read_names(p, "speaker"),
            "phone inventory": PhoneInventory.load,
            "prepared manifest": lambda p: read_prepared(p.parent, "test")}[kind]


@pytest.mark.parametrize("kind", sorted(TEXT_FILES))
@settings(**FUZZ)
@given(data=st.data())
def test_text_files(tmp_path, kind, data):
    name, valid = TEXT_FILES[kind]
    p = case(tmp_path, name, data.draw(contents(valid)))
    keeps_rule(lambda: _parser(kind)(p), [p])


@pytest.mark.parametrize("kind", sorted(TEXT_FILES))
def test_regression_text_files_that_are_not_utf8(tmp_path, kind):
    """Found by this suite: every one of these parsers let a UnicodeDecodeError escape."""
    p = case(tmp_path, TEXT_FILES[kind][0], b"\x80\xfe not UTF-8\n")
    with pytest.raises(SpeechkitError, match=str(p)):
        _parser(kind)(p)


@settings(**FUZZ)
@example(split=b"\xff\n", vad=b"\xff\n", tx=b"\xff\n")  # found by this suite: UnicodeDecodeError escaped
@given(split=contents(SPLIT), vad=contents(VAD), tx=contents(READ_TX))
def test_expresso_layout_files(tmp_path, split, vad, tx):
    from speechkit.data.corpora import expresso

    for s in ("train", "dev", "test"):
        case(tmp_path, f"splits/{s}.txt", split)
    v = case(tmp_path, "VAD_segments.txt", vad)
    t = case(tmp_path, "read_transcriptions.txt", tx)
    keeps_rule(lambda: expresso.read_splits(tmp_path), [tmp_path / "splits"])
    keeps_rule(lambda: expresso.read_vad_segments(tmp_path), [v])
    keeps_rule(lambda: expresso.read_transcriptions(tmp_path), [t])


@settings(**FUZZ)
@given(stem=st.one_of(st.text(max_size=40), mutated("ex03-ex01_angry_001")))
def test_expresso_file_names(stem):
    from speechkit.data.corpora import expresso

    keeps_rule(lambda: expresso.parse_stem(stem), [repr(stem)[1:-1][:20]])


@settings(**FUZZ)
@example(data=b"\x80\xfe not UTF-8\n")  # found by this suite: UnicodeDecodeError escaped
@example(data=b"- name:\n  kind: dense\n")  # found by make fuzz: a None name broke sorting the cards
@given(data=contents(CARD))
def test_model_cards(tmp_path, data, monkeypatch):
    from speechkit import hub

    p = case(tmp_path, "cards.yaml", data)
    monkeypatch.setenv("SPEECHKIT_CARDS", str(tmp_path))
    keeps_rule(hub.list_cards, [p])


@settings(**FUZZ)
@given(expr=st.one_of(st.text(max_size=60), mutated("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"),
                      st.just("__import__('os').system('touch pwned')"), st.just("[(1,1,1)] * 10**12")))
@example(expr="[(1,1,1)] * 1000000000000")  # found by this suite: list repetition without bound
def test_conv_feature_layers(tmp_path, expr, monkeypatch):
    from speechkit.units.hubert.interop import parse_conv_layers

    monkeypatch.chdir(tmp_path)
    keeps_rule(lambda: parse_conv_layers(expr), ["conv_feature_layers", repr(expr)[1:-1][:20]])
    assert not (tmp_path / "pwned").exists()


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=12)


def _model_configs():
    from speechkit.vdtts.config import VDTTSConfig
    from speechkit.vocoders.hifigan.config import CodeHiFiGANConfig
    from speechkit.vocoders.unitmel.config import UnitMelConfig

    return {"code_hifigan": (CodeHiFiGANConfig, CodeHiFiGANConfig(num_units=20).to_dict()),
            "unit_mel": (UnitMelConfig, UnitMelConfig(num_units=20).to_dict()),
            "vdtts": (VDTTSConfig, VDTTSConfig(phonemes=["a", "b"], speakers=["us1"]).to_dict())}


@pytest.mark.parametrize("kind", ["code_hifigan", "unit_mel", "vdtts"])
@settings(**FUZZ)
@given(data=st.data())
def test_model_config_dicts(kind, data):
    cls, valid = _model_configs()[kind]
    d = dict(valid)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(d) + ["unknown_key"]))
        if data.draw(st.booleans()) and key in d:
            del d[key]
        else:
            d[key] = data.draw(JSON_VALUES)
    keeps_rule(lambda: cls.from_dict(d).validate() if hasattr(cls, "validate") else cls.from_dict(d), [""])


OVERRIDE_KEYS = ["optim.lr", "train.block_size", "train.max_steps", "data.num_units", "model.init", "preset",
                 "train.seed", "+extra", "~train", "data.train", "model", "train.micro_batch_size"]
OVERRIDE_VALUES = ["1e-4", "-1", "0", "abc", "[1,2]", "{a: 1}", "null", "debug", "nope", "${oops}", "'", "1e309",
                   "???", ""]


@settings(**{**FUZZ, "max_examples": iterations(25)})
@example(overrides=["optim.lr=${oops}"])  # found by make fuzz: InterpolationKeyError escaped
@example(overrides=["preset=1e-4"])  # found by make fuzz: Hydra's ValueError escaped
@example(overrides=["preset=[1,2]"])  # found by make fuzz: Hydra's TypeError escaped
@given(overrides=st.lists(st.one_of(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(OVERRIDE_KEYS),
                                               st.sampled_from(OVERRIDE_VALUES)),
                                    st.text(max_size=20)), max_size=4))
def test_hydra_overrides(overrides):
    from speechkit.cli.train import compose
    from speechkit.train.ulm import UlmConfig, load_config

    def call():
        cfg = compose("ulm", ["data.train=t.jsonl", "data.num_units=10", "model.text_lm=lm", *overrides])
        load_config(UlmConfig, cfg)

    keeps_rule(call, [""])


@pytest.mark.parametrize("bad", [{"num_units": 20, "generator": ["a"]}, {"num_units": 20, "duration_predictor": 3},
                                 {"num_units": None}])
def test_regression_code_hifigan_config_of_wrong_types(bad):
    """Found by make fuzz: a list where the generator's mapping belongs escaped as a ValueError from dict()."""
    from speechkit.vocoders import VocoderError
    from speechkit.vocoders.hifigan.config import CodeHiFiGANConfig

    with pytest.raises(VocoderError, match="not a CodeHiFiGAN config|num_units must be"):
        CodeHiFiGANConfig.from_dict(bad)


def test_regression_vad_segments_with_a_malformed_number(tmp_path):
    """Found by make test's hypothesis run: '(2.0,...25)' matched the region pattern, then float() raised."""
    from speechkit.data.corpora import expresso
    from speechkit.data.corpora.expresso import ExpressoError

    p = case(tmp_path, "VAD_segments.txt", b"ex01_default_00001\t(0.1, 1.5) (2.0,...25)\n")
    with pytest.raises(ExpressoError, match=f"{p}:1"):
        expresso.read_vad_segments(tmp_path)
    case(tmp_path, "VAD_segments.txt", b"ex01_default_00001\t(.1, 1.5) (2., 2.5)\n")
    assert expresso.read_vad_segments(tmp_path) == {("ex01_default_00001", None): [(0.1, 1.5), (2.0, 2.5)]}


def test_regression_vdtts_config_with_fps_zero():
    """Found by make fuzz: fps=False (0) divided by zero in VDTTSConfig.validate."""
    from speechkit.vdtts.config import VDTTSConfig, VDTTSConfigError

    d = VDTTSConfig(phonemes=["a", "b"], speakers=["us1"]).to_dict()
    for bad in (0, False, -25, "25"):
        with pytest.raises(VDTTSConfigError, match="fps"):
            VDTTSConfig.from_dict({**d, "fps": bad})
