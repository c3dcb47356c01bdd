"""An offline talking-face corpus: rendered 2-D faces whose mouths follow the phonemes of synthetic speech.

For each sentence, espeak-ng turns the text into MBROLA phoneme data (phonemes with durations);
speechkit rescales the tempo, jitters every phoneme's duration, inserts silent pauses between some words and
adds leading/trailing silence — timing that the text does not carry and the video does. MBROLA renders the speech
(16 kHz) and the phoneme timings drive a cartoon face at 25 fps: each phoneme has a viseme (mouth opening and
width), smoothed over ~30 ms like real coarticulation; eyes blink at random. Faces come in several styles (skin,
lips, background, face shape) with a small per-video head offset; speakers are the MBROLA voices.

Layout written under ``root``::

    video/{speaker}/{id}.mp4     128x128 H.264 at 25 fps with the speech as AAC audio
    audio/{speaker}/{id}.wav     the speech, 16 kHz mono, exactly num_frames * 640 samples
    meta/{id}.json               one utterance (the manifest rows below); written last, so it marks completion
    {train,valid,test}.jsonl     {"id", "video", "audio", "text", "speaker", "face", "num_frames", "fps",
                                  "sample_rate", "phonemes": [[symbol, start_s, end_s], ...]}  (paths relative)
    README.txt                   what was generated and how (MBROLA voices: non-commercial licence)

Re-running is safe: finished utterances are kept and a completion marker records the settings.
"""

from __future__ import annotations

import json
import logging
import math
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from speechkit.errors import SpeechkitError
from speechkit.utils.files import atomic_open

__all__ = ["TalkingFaceConfig", "prepare_talking_face", "render_face", "viseme_track", "FACE_STYLES", "VISEMES",
           "FPS", "SAMPLE_RATE"]

log = logging.getLogger(__name__)

FPS = 25
SAMPLE_RATE = 16000
SIZE = 128
MARKER = ".speechkit_complete.json"

# Face styles: skin, lip, mouth-interior, background colours (RGB) and face half-width/half-height in pixels.
FACE_STYLES: dict[str, dict] = {
    "pale": dict(skin=(236, 206, 180), lip=(190, 70, 80), inner=(40, 10, 15), bg=(70, 110, 160), rx=44, ry=54),
    "tan": dict(skin=(200, 150, 105), lip=(150, 60, 55), inner=(35, 12, 10), bg=(200, 200, 190), rx=48, ry=56),
    "dark": dict(skin=(120, 80, 55), lip=(90, 40, 40), inner=(20, 5, 5), bg=(150, 190, 150), rx=46, ry=58),
    "round": dict(skin=(245, 220, 200), lip=(210, 90, 110), inner=(50, 15, 25), bg=(40, 40, 60), rx=52, ry=52),
    "long": dict(skin=(225, 185, 150), lip=(170, 70, 60), inner=(30, 10, 10), bg=(120, 90, 140), rx=40, ry=60),
    "green": dict(skin=(150, 200, 140), lip=(80, 120, 60), inner=(15, 30, 10), bg=(230, 230, 240), rx=46, ry=54),
}

# MBROLA (SAMPA) phoneme -> (mouth opening 0..1, mouth width scale). Unknown phonemes get (0.4, 1.0).
VISEMES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(["_", "p", "p_h", "b", "m"], (0.0, 0.95)),
    **dict.fromkeys(["f", "v"], (0.12, 1.0)),
    **dict.fromkeys(["T", "D", "t", "t_h", "d", "n", "l", "5", "4", "s", "z", "r"], (0.28, 1.0)),
    **dict.fromkeys(["S", "Z", "tS", "dZ"], (0.32, 0.8)),
    **dict.fromkeys(["k", "k_h", "g", "N", "h", "j"], (0.4, 0.95)),
    "w": (0.18, 0.6),
    **dict.fromkeys(["A", "{", "a", "aI", "AI", "aU", "V", "Q", "A:"], (1.0, 1.1)),
    **dict.fromkeys(["E", "@", "e", "eI", "EI", "r=", "3:", "e@", "I@", "@U", "3"], (0.62, 1.0)),
    **dict.fromkeys(["i", "I", "i:"], (0.35, 1.25)),
    **dict.fromkeys(["u", "U", "u:"], (0.32, 0.6)),
    **dict.fromkeys(["O", "o", "oU", "OI", "O:"], (0.75, 0.75)),
}


@dataclass(frozen=True)
class TalkingFaceConfig:
    """Settings of a talking-face corpus.

    Attributes:
        minutes: approximate total duration of speech (about 25 utterances a minute).
        seed: seed of sentences, voices, faces and timing.
        speakers: MBROLA voices (us1, us2, us3, en1).
        faces: face styles from :data:`FACE_STYLES`.
        tempo_range: per-utterance duration scale, drawn log-uniformly (video timing the text does not give).
        phoneme_jitter: standard deviation of the per-phoneme log-duration jitter.
        pause_prob: probability of a silent pause between two words.
        pause_range: pause length in seconds.
        test_fraction, valid_fraction: held-out shares (the last utterances).
    """

    minutes: float = 20.0
    seed: int = 0
    speakers: tuple[str, ...] = ("us1", "us2", "us3", "en1")
    faces: tuple[str, ...] = tuple(FACE_STYLES)
    tempo_range: tuple[float, float] = (0.75, 1.35)
    phoneme_jitter: float = 0.15
    pause_prob: float = 0.25
    pause_range: tuple[float, float] = (0.12, 0.5)
    test_fraction: float = 0.05
    valid_fraction: float = 0.05
    version: int = 1

    def validate(self) -> None:
        if not self.minutes > 0:
            raise ValueError(f"minutes must be > 0. Found {self.minutes}")
        from speechkit.synth.tts import MBROLA_VOICES

        for s in self.speakers:
            if s not in MBROLA_VOICES:
                raise ValueError(f"speakers must be MBROLA voices {sorted(MBROLA_VOICES)}. Found {s!r}")
        unknown = set(self.faces) - set(FACE_STYLES)
        if unknown or not self.faces:
            raise ValueError(f"faces must be a non-empty subset of {sorted(FACE_STYLES)}. Found {self.faces}")
        if not 0 < self.tempo_range[0] <= self.tempo_range[1]:
            raise ValueError(f"tempo_range must be (low, high) with 0 < low <= high. Found {self.tempo_range}")


def viseme_track(phonemes: list[tuple[str, float, float]], num_frames: int, fps: float = FPS,
                 smooth: float = 0.03) -> np.ndarray:
    """Mouth opening and width at every video frame.

    Args:
        phonemes: ``(symbol, start_s, end_s)``.
        num_frames: frames to produce.
        fps: frame rate.
        smooth: standard deviation (s) of the Gaussian smoothing (coarticulation).

    Returns:
        ``float32 (num_frames, 2)``: opening in ``[0, 1]`` and width scale.
    """
    step = 0.005
    t = np.arange(0, num_frames / fps + 0.1, step)
    target = np.tile(np.array(VISEMES["_"], dtype=np.float64), (len(t), 1))
    for sym, start, end in phonemes:
        target[(t >= start) & (t < end)] = VISEMES.get(sym, (0.4, 1.0))
    k = np.arange(-3 * smooth, 3 * smooth + step, step)
    kernel = np.exp(-0.5 * (k / smooth) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(target, ((len(k) // 2, len(k) // 2), (0, 0)), mode="edge")
    smoothed = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(2)], axis=1)
    idx = np.minimum(np.round((np.arange(num_frames) + 0.5) / fps / step).astype(int), len(smoothed) - 1)
    return smoothed[idx].astype(np.float32)


def render_face(style: str, opening: float, width: float, *, blink: bool = False, offset: tuple[int, int] = (0, 0),
                size: int = SIZE) -> np.ndarray:
    """Draws one frame of a frontal cartoon face.

    Args:
        style: a key of :data:`FACE_STYLES`.
        opening: mouth opening in ``[0, 1]`` (0 = lips closed).
        width: mouth width scale (0.6 rounded ... 1.25 spread).
        blink: eyes closed.
        offset: head offset ``(dx, dy)`` in pixels.
        size: frame side (pixels; the face is drawn for 128 and scaled).

    Returns:
        ``uint8 (size, size, 3)`` RGB.
    """
    from PIL import Image, ImageDraw

    s = FACE_STYLES[style]
    img = Image.new("RGB", (SIZE, SIZE), s["bg"])
    d = ImageDraw.Draw(img)
    cx, cy = SIZE // 2 + offset[0], SIZE // 2 + offset[1]
    d.ellipse([cx - s["rx"], cy - s["ry"], cx + s["rx"], cy + s["ry"]], fill=s["skin"])
    for ex in (cx - 17, cx + 17):  # eyes
        if blink:
            d.line([ex - 7, cy - 14, ex + 7, cy - 14], fill=(30, 30, 30), width=2)
        else:
            d.ellipse([ex - 7, cy - 19, ex + 7, cy - 9], fill=(250, 250, 250))
            d.ellipse([ex - 3, cy - 17, ex + 3, cy - 11], fill=(40, 30, 20))
    d.line([cx, cy - 6, cx - 3, cy + 8, cx + 2, cy + 8], fill=tuple(int(c * 0.75) for c in s["skin"]), width=2)
    my, half_w = cy + 27, 15 * width
    inner_h = 13 * float(np.clip(opening, 0, 1))
    lip = 3
    d.ellipse([cx - half_w, my - inner_h / 2 - lip, cx + half_w, my + inner_h / 2 + lip], fill=s["lip"])
    if inner_h >= 1:
        d.ellipse([cx - half_w + lip, my - inner_h / 2, cx + half_w - lip, my + inner_h / 2], fill=s["inner"])
    else:
        d.line([cx - half_w + 1, my, cx + half_w - 1, my], fill=s["inner"], width=1)
    if size != SIZE:
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img)


def _timed_pho(text: str, voice, rng: random.Random, cfg: TalkingFaceConfig) -> str:
    """espeak-ng's MBROLA phoneme data for ``text`` with this utterance's tempo, jitter, pauses and silences.

    Pauses: a comma goes between two words with probability ``pause_prob`` (espeak-ng then pauses there); every
    pause inside the sentence gets a random length. The transcript keeps no commas, so only the video shows them.
    """
    from speechkit.data.phonemize import espeak_pho

    words = text.split()
    spoken = " ".join(w + ("," if k < len(words) - 1 and rng.random() < cfg.pause_prob and not w.endswith(",")
                           else "") for k, w in enumerate(words))
    pho = espeak_pho(spoken, voice.espeak_voice)
    rows = [line.split() for line in pho.splitlines() if line.strip() and not line.startswith(";")]
    while rows and rows[-1][0] == "_":  # the final silence is drawn below
        rows.pop()
    tempo = math.exp(rng.uniform(math.log(cfg.tempo_range[0]), math.log(cfg.tempo_range[1])))
    lines = [f"_ {int(rng.uniform(0.1, 0.5) * 1000)}"]
    for parts in rows:
        if parts[0] == "_":
            dur = rng.uniform(*cfg.pause_range) * 1000 if float(parts[1]) > 20 else 1
        else:
            dur = float(parts[1]) * tempo * math.exp(rng.gauss(0, cfg.phoneme_jitter))
        lines.append(" ".join([parts[0], str(max(1, round(dur))), *parts[2:]]))
    lines.append(f"_ {int(rng.uniform(0.1, 0.4) * 1000)}")
    return "\n".join(lines) + "\n"


def _utterance(job: dict) -> dict:
    """Synthesises, renders and writes one utterance; returns its manifest row."""
    import tempfile

    import torch

    from speechkit.audio import io as audio_io
    from speechkit.audio import video
    from speechkit.synth import tts

    torch.set_num_threads(1)
    root, uid = Path(job["root"]), job["id"]
    meta = root / "meta" / f"{uid}.json"
    if meta.is_file():
        return json.loads(meta.read_text())
    cfg = TalkingFaceConfig(**job["cfg"])
    rng = random.Random(f"{cfg.seed}-{uid}")
    voice = tts.MBROLA_VOICES[job["speaker"]]
    pho = _timed_pho(job["text"], voice, rng, cfg)
    pho, phonemes = tts.apply_prosody(pho, tts.Prosody(pitch=math.exp(rng.uniform(-0.08, 0.08))))
    db = voice.espeak_voice.removeprefix("mb-")
    with tempfile.TemporaryDirectory(prefix="speechkit-face-") as tmp:
        tts.mbrola_render(pho, db, Path(tmp) / "o.wav")
        wav, sr = audio_io.load(Path(tmp) / "o.wav", sample_rate=SAMPLE_RATE)
    hop = SAMPLE_RATE // FPS
    num_frames = math.ceil(len(wav) / hop)
    wav = np.pad(wav.numpy(), (0, num_frames * hop - len(wav)))
    track = viseme_track(phonemes, num_frames)
    offset = (rng.randint(-4, 4), rng.randint(-4, 4))
    blink_at = {f for f in range(num_frames) if rng.random() < 0.03 for f in range(f, f + 3)}
    frames = np.stack([render_face(job["face"], o, w, blink=i in blink_at, offset=offset)
                       for i, (o, w) in enumerate(track)])
    rel_video, rel_audio = f"video/{voice.name}/{uid}.mp4", f"audio/{voice.name}/{uid}.wav"
    audio_io.save(root / rel_audio, wav, SAMPLE_RATE)
    video.write_video(root / rel_video, frames, FPS, audio=wav, sample_rate=SAMPLE_RATE)
    row = {"id": uid, "video": rel_video, "audio": rel_audio, "text": job["text"], "speaker": voice.name,
           "face": job["face"], "num_frames": num_frames, "fps": FPS, "sample_rate": SAMPLE_RATE,
           "phonemes": [[p, round(a, 4), round(b, 4)] for p, a, b in phonemes]}
    with atomic_open(meta) as f:
        json.dump(row, f)
    return row


def prepare_talking_face(root: str | Path, config: TalkingFaceConfig | None = None, *, jobs: int = 1,
                         **overrides) -> Path:
    """Generates (or completes) the talking-face corpus under ``root``.

    Args:
        root: output folder.
        config: settings; keyword ``overrides`` replace its fields (``minutes=2``, ``seed=1``, ...).
        jobs: worker processes.

    Returns:
        ``root``.

    Raises:
        SpeechkitError: ``root`` holds a finished corpus made with other settings, or MBROLA is missing.

    Example:
        >>> prepare_talking_face("data/talking_face", minutes=20, jobs=2)
    """
    from speechkit.synth.sentences import sentence_stream, take
    from speechkit.synth.tts import mbrola_available

    cfg = TalkingFaceConfig(**{**asdict(config or TalkingFaceConfig()), **overrides})
    cfg = TalkingFaceConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in asdict(cfg).items()})
    cfg.validate()
    root = Path(root)
    marker = root / MARKER
    settings = json.loads(json.dumps(asdict(cfg)))
    if marker.is_file():
        if json.loads(marker.read_text()) == settings:
            return root
        raise SpeechkitError(f"{root}: holds a talking-face corpus made with other settings ({marker}); "
                             "use another folder")
    missing = [s for s in cfg.speakers if not mbrola_available(s)]
    if missing:
        raise SpeechkitError(f"MBROLA voices {missing} are not installed (Debian packages mbrola-<voice>; "
                             "data_prep/system_deps.sh installs them)")
    n = max(3, round(cfg.minutes * 25))
    rng = random.Random(f"talking-face-{cfg.seed}")
    texts = take(sentence_stream(cfg.seed + 7), n, "sentences")
    work = [{"root": str(root), "cfg": settings, "id": f"tf{i:05d}", "text": t,
             "speaker": cfg.speakers[i % len(cfg.speakers)], "face": rng.choice(cfg.faces)}
            for i, t in enumerate(texts)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as ex:
            rows = list(ex.map(_utterance, work, chunksize=4))
    else:
        rows = [_utterance(j) for j in work]
    n_test = max(1, round(cfg.test_fraction * n))
    n_valid = max(1, round(cfg.valid_fraction * n))
    splits = {"train": rows[: n - n_test - n_valid], "valid": rows[n - n_test - n_valid : n - n_test],
              "test": rows[n - n_test :]}
    for name, part in splits.items():
        with atomic_open(root / f"{name}.jsonl") as f:
            f.writelines(json.dumps(r) + "\n" for r in part)
    seconds = sum(r["num_frames"] for r in rows) / FPS
    with atomic_open(root / "README.txt") as f:
        f.write(f"speechkit talking-face corpus: {len(rows)} utterances, {seconds / 60:.1f} minutes, "
                f"speakers {', '.join(cfg.speakers)}, faces {', '.join(cfg.faces)}.\n"
                f"Settings: {json.dumps(settings)}\n"
                "Speech: espeak-ng + MBROLA diphone voices (MBROLA voices are licensed for non-commercial use "
                "only).\nFaces: rendered 2-D cartoons whose mouths follow the phoneme timings (visemes) at 25 fps.\n")
    with atomic_open(marker) as f:
        json.dump(settings, f)
    log.info("talking-face corpus: %d utterances, %.1f minutes in %s", len(rows), seconds / 60, root)
    return root
