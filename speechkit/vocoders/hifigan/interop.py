"""Official HiFi-GAN / CodeHiFiGAN formats ↔ speechkit: config translation, key maps, weight-norm folding.

The official checkpoints (speech-resynthesis, fairseq, textlesslib and jik876/hifi-gan ``g_XXXXXXXX`` files, fairseq
``model.pt`` vocoder files) are ``torch.save({"generator": state_dict})`` pickles of plain tensors: they are read
with ``torch.load(weights_only=True)``, so no foreign code runs. Their convolutions carry legacy weight-norm keys
(``weight_g``, ``weight_v``), folded here into plain weights with the same ``torch._weight_norm`` the official
``remove_weight_norm()`` uses, so the folded weights are bit-identical to the official ones.

Facts of the official config the translation relies on: ``multispkr`` / ``multistyle`` are enabled by any truthy
value (``"from_input_file"``, ``"_"``, ``true``); table sizes are ``num_speakers`` (default 200) and
``num_styles`` (default 100); ``embedder_params`` replaces the speaker table by a linear layer from
``embedder_dim`` (default 256); ``f0`` with ``f0_quant_num_bin > 0`` embeds F0 bins, otherwise F0 is one channel;
the conditioning order is units, F0, speaker, style; ``model_in_dim`` is the generator input width.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.config import (
    CodeHiFiGANConfig,
    DurationPredictorConfig,
    GeneratorConfig,
    MelHiFiGANConfig,
)

__all__ = ["fold_weight_norm", "load_official_checkpoint", "read_official_config",
           "code_config_from_official", "mel_config_from_official",
           "state_dict_from_official", "state_dict_to_official", "code_config_to_official",
           "mel_config_to_official"]

# official key prefix -> ours (code generator); the generator body is under `generator.` in our unit model
_CODE_KEYS = [
    (r"^dict\.", "unit_embedding."),
    (r"^spkr\.", "speaker_embedding."),
    (r"^style\.", "style_embedding."),
    (r"^f0_quant_embed\.", "f0_embedding."),
    (r"^dur_predictor\.conv([12])\.0\.", r"duration_predictor.conv\1."),
    (r"^dur_predictor\.", "duration_predictor."),
    (r"^(conv_pre|ups|resblocks|conv_post)\.", r"generator.\1."),
]
_UNSUPPORTED = {
    "f0_quantizer_path": "VQ-VAE F0 codes (speech-resynthesis f0_quantizer)",
    "lambda_commit": "a jointly trained F0 VQ-VAE",
    "code_vq_params": "a VQ-VAE over waveforms instead of units",
}


def load_official_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The generator state dict of an official ``g_XXXXXXXX`` / ``model.pt`` file (``weights_only``).

    Raises:
        VocoderError: missing, unreadable, or holding no generator state dict; the message names the file.
    """
    p = Path(path)
    if not p.is_file():
        raise VocoderError(f"{p}: no such checkpoint file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols of files it then refuses
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every unpickling failure is a bad file for the user
        raise VocoderError(f"{p}: not a loadable checkpoint; official vocoder checkpoints are torch.save files of "
                           f"plain tensors ({type(e).__name__}: {str(e)[:200]})") from None
    if isinstance(state, dict) and isinstance(state.get("generator"), dict):
        state = state["generator"]
    if not isinstance(state, dict) or not any(str(k).startswith("conv_pre.") for k in state):
        keys = list(state)[:5] if isinstance(state, dict) else type(state).__name__
        raise VocoderError(f"{p}: not a HiFi-GAN generator checkpoint: expected {{'generator': state_dict}} with "
                           f"'conv_pre.*' keys. Found {keys}")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VocoderError(f"{p}: the generator state dict holds values that are not tensors")
    return state


def read_official_config(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON dict of an official ``config.json``."""
    p = Path(path)
    if not p.is_file():
        raise VocoderError(f"{p}: no such config file (an official vocoder comes with a config.json)")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VocoderError(f"{p}: not a JSON config ({e})") from None
    if not isinstance(cfg, dict):
        raise VocoderError(f"{p}: a vocoder config must be a JSON object. Found {type(cfg).__name__}")
    return cfg


def _get(cfg: dict, key: str, source: str, default: Any = None) -> Any:
    if key in cfg:
        return cfg[key]
    if default is None:
        raise VocoderError(f"{source}: missing required key {key!r}")
    return default


def _generator_from_official(cfg: dict, source: str) -> GeneratorConfig:
    g = GeneratorConfig(
        upsample_initial_channel=int(_get(cfg, "upsample_initial_channel", source)),
        upsample_rates=tuple(int(x) for x in _get(cfg, "upsample_rates", source)),
        upsample_kernel_sizes=tuple(int(x) for x in _get(cfg, "upsample_kernel_sizes", source)),
        resblock=str(cfg.get("resblock", "1")),
        resblock_kernel_sizes=tuple(int(x) for x in _get(cfg, "resblock_kernel_sizes", source)),
        resblock_dilation_sizes=tuple(tuple(int(y) for y in x) for x in _get(cfg, "resblock_dilation_sizes", source)))
    try:
        g.validate()
    except VocoderError as e:
        raise VocoderError(f"{source}: {e}") from None
    return g


def _rows(state: dict[str, torch.Tensor] | None, key: str) -> int | None:
    return None if state is None or key not in state else int(state[key].shape[0])


def code_config_from_official(cfg: dict[str, Any], state: dict[str, torch.Tensor] | None = None,
                              source: str = "config") -> CodeHiFiGANConfig:
    """Translates an official CodeHiFiGAN ``config.json`` dict (+ its official state dict, to size the speaker and
    style tables the way the checkpoint was trained) into a :class:`CodeHiFiGANConfig`.

    Raises:
        VocoderError: a variant speechkit does not implement, or the config and weights disagree.
    """
    for key, what in _UNSUPPORTED.items():
        if cfg.get(key):
            raise VocoderError(f"{source}: {key!r} is set: {what} is not supported by speechkit (supported: units, "
                               "continuous F0, F0 bins, speaker table or vectors, style table, duration predictor)")
    emb = int(_get(cfg, "embedding_dim", source))
    num_speakers = num_styles = speaker_dim = 0
    if cfg.get("embedder_params"):
        speaker_dim = int(cfg.get("embedder_dim", 256))
    elif cfg.get("multispkr"):
        num_speakers = _rows(state, "spkr.weight") or int(cfg.get("num_speakers", 200))
    if cfg.get("multistyle"):
        num_styles = _rows(state, "style.weight") or int(cfg.get("num_styles", 100))
    for key, rows in (("num_speakers", num_speakers), ("num_styles", num_styles)):
        if key in cfg and rows and int(cfg[key]) != rows:
            raise VocoderError(f"{source}: {key} is {cfg[key]} but the checkpoint's table has {rows} rows")
    f0, f0_bins = "none", 0
    if cfg.get("f0"):
        f0_bins = int(cfg.get("f0_quant_num_bin", 0) or 0)
        f0 = "quantized" if f0_bins > 0 else "continuous"
    dp = None
    if cfg.get("dur_predictor_params"):
        p = cfg["dur_predictor_params"]
        if int(p.get("encoder_embed_dim", emb)) != emb:
            raise VocoderError(f"{source}: dur_predictor_params.encoder_embed_dim must equal embedding_dim ({emb}). "
                               f"Found {p['encoder_embed_dim']}")
        dp = DurationPredictorConfig(hidden_dim=int(p["var_pred_hidden_dim"]),
                                     kernel_size=int(p["var_pred_kernel_size"]), dropout=float(p["var_pred_dropout"]))
    out = CodeHiFiGANConfig(num_units=int(_get(cfg, "num_embeddings", source)), embedding_dim=emb,
                            num_speakers=num_speakers, num_styles=num_styles, speaker_embedding_dim=speaker_dim,
                            f0=f0, f0_bins=f0_bins, duration_predictor=dp,
                            generator=_generator_from_official(cfg, source),
                            sample_rate=int(cfg.get("sampling_rate", 16000)))
    try:
        out.validate()
    except VocoderError as e:
        raise VocoderError(f"{source}: {e}") from None
    in_dim = cfg.get("model_in_dim")
    for key in ("conv_pre.weight_v", "conv_pre.weight", "conv_pre.parametrizations.weight.original1"):
        if state is not None and key in state:
            in_dim = int(state[key].shape[1])
            break
    if in_dim is not None and int(in_dim) != out.conditioning_dim:
        raise VocoderError(
            f"{source}: the generator input is {in_dim} channels but the config's conditioning is "
            f"{out.conditioning_dim} (units {emb}, f0 {f0}, speakers {num_speakers or speaker_dim}, styles "
            f"{num_styles}): config and checkpoint do not belong together")
    return out


def mel_config_from_official(cfg: dict[str, Any], source: str = "config") -> MelHiFiGANConfig:
    """Translates a jik876/hifi-gan ``config.json`` dict into a :class:`MelHiFiGANConfig`."""
    out = MelHiFiGANConfig(num_mels=int(cfg.get("num_mels", 80)), sample_rate=int(cfg.get("sampling_rate", 22050)),
                           generator=_generator_from_official(cfg, source))
    out.validate()
    return out


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Legacy (``weight_g``/``weight_v``) and parametrization weight-norm keys → plain ``weight``."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        for g_suffix, v_suffix in ((".weight_g", ".weight_v"),
                                   (".parametrizations.weight.original0", ".parametrizations.weight.original1")):
            if k.endswith(g_suffix):
                base = k[: -len(g_suffix)]
                weight = state.get(base + v_suffix)
                # checked before torch sees them: a corrupt shape (a zero-size dim) crashes torch._weight_norm
                expected = None if weight is None else (weight.shape[0],) + (1,) * (weight.dim() - 1)
                if weight is None or weight.numel() == 0 or tuple(v.shape) != expected:
                    raise VocoderError(f"weight norm of {base}: magnitude {tuple(v.shape)} does not fit direction "
                                       f"{None if weight is None else tuple(weight.shape)} (a corrupt checkpoint)")
                out[base + ".weight"] = torch._weight_norm(weight, v, 0)
                break
            if k.endswith(v_suffix):
                break
        else:
            out[k] = v
    return out


def state_dict_from_official(state: dict[str, torch.Tensor], *, kind: str = "code") -> dict[str, torch.Tensor]:
    """Official generator keys → speechkit keys, weight norm folded.

    Args:
        state: the official generator state dict.
        kind: ``"code"`` (CodeHiFiGAN → :class:`~speechkit.vocoders.hifigan.model.CodeHiFiGANGenerator`) or
            ``"mel"`` (HiFi-GAN → :class:`~speechkit.vocoders.hifigan.model.HiFiGANGenerator`).
    """
    folded = fold_weight_norm(state)
    if kind == "mel":
        return folded
    out = {}
    for k, v in folded.items():
        for pattern, repl in _CODE_KEYS:
            new, n = re.subn(pattern, repl, k)
            if n:
                out[new] = v
                break
        else:
            out[k] = v  # left as is: load_state_dict reports it as unexpected
    return out


def state_dict_to_official(state: dict[str, torch.Tensor], *, kind: str = "code") -> dict[str, torch.Tensor]:
    """speechkit generator keys (plain weights) → the official keys with legacy weight norm
    (``weight_v = w``, ``weight_g = ||w||`` over all dims but 0), loadable by the official generators, which
    re-compute exactly ``w`` from them."""
    inverse = [(r"^unit_embedding\.", "dict."), (r"^speaker_embedding\.", "spkr."), (r"^style_embedding\.", "style."),
               (r"^f0_embedding\.", "f0_quant_embed."),
               (r"^duration_predictor\.conv([12])\.", r"dur_predictor.conv\1.0."),
               (r"^duration_predictor\.", "dur_predictor."), (r"^generator\.", "")]
    out = {}
    for k, v in fold_weight_norm(state).items():
        name = k
        if kind == "code":
            for pattern, repl in inverse:
                name, n = re.subn(pattern, repl, name)
                if n:
                    break
        body = kind == "mel" or k.startswith("generator.")
        if body and name.endswith(".weight") and v.dim() == 3:
            base = name[: -len(".weight")]
            # g = the norm exactly as torch's weight-norm kernel computes it, so g / ||v|| is exactly 1 and the
            # official code re-computes bit-identical weights
            _, norm = torch._weight_norm_interface(v, torch.ones_like(v[:, :1, :1]), 0)
            out[base + ".weight_g"] = norm.reshape(v.shape[0], 1, 1).clone()
            out[base + ".weight_v"] = v.clone()
        else:
            out[name] = v.clone()
    return out


def _generator_to_official(g: GeneratorConfig) -> dict[str, Any]:
    return {"resblock": g.resblock, "upsample_rates": list(g.upsample_rates),
            "upsample_kernel_sizes": list(g.upsample_kernel_sizes),
            "upsample_initial_channel": g.upsample_initial_channel,
            "resblock_kernel_sizes": list(g.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in g.resblock_dilation_sizes]}


def code_config_to_official(cfg: CodeHiFiGANConfig, train: dict[str, Any] | None = None) -> dict[str, Any]:
    """The official ``config.json`` of ``cfg`` (what textlesslib / fairseq / speech-resynthesis read), plus the
    released training fields (``train`` overrides them)."""
    out: dict[str, Any] = {**_generator_to_official(cfg.generator), "num_embeddings": cfg.num_units,
                           "embedding_dim": cfg.embedding_dim, "model_in_dim": cfg.conditioning_dim,
                           "code_hop_size": cfg.code_hop_size, "sampling_rate": cfg.sample_rate,
                           "f0": cfg.f0 != "none"}
    if cfg.num_speakers:
        out.update(multispkr="from_input_file", num_speakers=cfg.num_speakers)
    if cfg.speaker_embedding_dim:
        out.update(multispkr="from_input_file", embedder_params={"embedder_dim": cfg.speaker_embedding_dim},
                   embedder_dim=cfg.speaker_embedding_dim)
    if cfg.num_styles:
        out.update(multistyle="from_input_file", num_styles=cfg.num_styles)
    if cfg.f0 == "quantized":
        out["f0_quant_num_bin"] = cfg.f0_bins
    if cfg.duration_predictor is not None:
        dp = cfg.duration_predictor
        out["dur_prediction_weight"] = 1.0
        out["dur_predictor_params"] = {"encoder_embed_dim": cfg.embedding_dim, "var_pred_hidden_dim": dp.hidden_dim,
                                       "var_pred_kernel_size": dp.kernel_size, "var_pred_dropout": dp.dropout}
    out.update({"segment_size": 8960, "num_mels": 80, "num_freq": 1025, "n_fft": 1024, "hop_size": 256,
                "win_size": 1024, "fmin": 0, "fmax": 8000, "fmax_for_loss": None, "learning_rate": 0.0002,
                "adam_b1": 0.8, "adam_b2": 0.99, "lr_decay": 0.999})
    out.update(train or {})
    return out


def mel_config_to_official(cfg: MelHiFiGANConfig) -> dict[str, Any]:
    """The jik876/hifi-gan ``config.json`` fields of ``cfg``."""
    return {**_generator_to_official(cfg.generator), "num_mels": cfg.num_mels, "sampling_rate": cfg.sample_rate}
