"""``HubertFeatureReader``: waveform -> features of one HuBERT layer, as textlesslib / fairseq compute them.

Behaviour matched (textlesslib ``HubertFeatureReader``, fairseq ``dump_hubert_feature.py``): when the model's task
says ``normalize``, the whole utterance is layer-normalised first; then it is cut into chunks of at most
``max_chunk`` samples (100 s at 16 kHz) encoded separately and concatenated; the result is the raw output of
transformer layer ``layer`` (1-based, no final layer norm). No padding is added around the utterance.
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.units.hubert.config import HubertConfig
from speechkit.units.hubert.model import HubertModel

__all__ = ["HubertFeatureReader"]


class HubertFeatureReader(nn.Module):
    """Dense features of a HuBERT layer.

    Args:
        model: the encoder.
        config: its architecture (gives rates and normalisation).
        layer: transformer layer to read, 1-based.
        max_chunk: longest piece encoded at once, in samples (textlesslib: 1,600,000).
        autocast: ``None`` (exact fp32, the default) or ``torch.bfloat16`` for the opt-in fast path (matrix
            products in bf16 under ``torch.autocast``, normalisations in fp32; ~3x faster on CPUs with AMX /
            AVX512-BF16, features within bf16 rounding so a few percent of units change). On a device without
            bf16 arithmetic the reader stays fp32 and one warning line says why (:mod:`speechkit.precision`).

    Example:
        >>> reader = HubertFeatureReader.from_pretrained("hubert_base_ls960.pt", layer=6)
        >>> feats = reader(wav)            # wav: (samples,) at reader.expected_sample_rate
        >>> feats.shape                    # (frames, 768), frames ~ samples / 320
    """

    def __init__(self, model: HubertModel, config: HubertConfig, layer: int, max_chunk: int = 1_600_000,
                 autocast: torch.dtype | None = None):
        super().__init__()
        if not 1 <= layer <= config.num_layers:
            raise ValueError(f"layer must be between 1 and {config.num_layers} for this model. Found {layer}")
        self.model, self.config, self.layer, self.max_chunk = model.eval(), config, layer, max_chunk
        self._autocast: torch.dtype | None = None
        self._requested: torch.dtype | None = autocast

    @property
    def autocast(self) -> torch.dtype | None:
        """The autocast dtype the model runs under on its current device (``None``: exact fp32); setting a dtype
        whose kernels the device lacks leaves fp32, with one warning line."""
        from speechkit.precision import autocast_dtype

        if self._requested is not None:  # resolved where the model runs, so .to(device) after setting works
            self._autocast = autocast_dtype(self._requested, self.device, what="HuBERT fast path (bf16 autocast)")
            self._requested = None
        return self._autocast

    @autocast.setter
    def autocast(self, dtype: torch.dtype | None) -> None:
        self._requested, self._autocast = dtype, None

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, layer: int = 6, max_chunk: int = 1_600_000,
                        device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None) -> HubertFeatureReader:
        """A fairseq ``.pt`` file, a transformers HuBERT/wav2vec2 folder, a speechkit HuBERT folder, or a ``hubert``
        model card by name (fetched through :mod:`speechkit.hub`), read at ``layer``.

        Args:
            name_or_path: the file, folder or card name (:meth:`HubertModel.from_pretrained
                <speechkit.units.hubert.model.HubertModel.from_pretrained>` reads it).
            layer: transformer layer to read, 1-based.
            max_chunk: longest piece encoded at once, in samples (textlesslib: 1,600,000).
            device: where to put it (default: the CPU).
            dtype: ``torch.bfloat16`` turns on the autocast fast path where ``device`` computes in it (else fp32,
                with one warning line); ``None`` / ``torch.float32``: exact fp32. See
                :func:`speechkit.utils.checkpoint.place`.

        Raises:
            CheckpointError: unreadable or unsupported checkpoint (the message names the file and why), or
                ``layer`` outside ``1..num_layers`` (a ``ValueError`` too).
        """
        from speechkit.units.hubert.model import HubertModel
        from speechkit.utils.checkpoint import CheckpointError, place

        model = HubertModel.from_pretrained(name_or_path)
        try:
            reader = cls(model, model.config, layer, max_chunk)
        except ValueError as e:
            raise CheckpointError(f"{name_or_path}: {e}") from None
        return place(reader, device, dtype)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, layer: int = 6, max_chunk: int = 1_600_000,
                        device: str | torch.device = "cpu", autocast: torch.dtype | None = None) -> HubertFeatureReader:
        """Deprecated alias (kept for one release) of
        ``HubertFeatureReader.from_pretrained(path, layer=layer, max_chunk=max_chunk, device=device, dtype=autocast)``.
        """
        warnings.warn("HubertFeatureReader.from_checkpoint is deprecated; use "
                      "HubertFeatureReader.from_pretrained(path, layer=...)", DeprecationWarning, stacklevel=2)
        return cls.from_pretrained(path, layer=layer, max_chunk=max_chunk, device=device, dtype=autocast)

    @property
    def expected_sample_rate(self) -> int:
        """Input sample rate the model was trained on."""
        return self.config.sample_rate

    @property
    def code_hop_size(self) -> int:
        """Input samples per feature frame (320 for 50 Hz models, 640 for 25 Hz)."""
        return self.config.hop_size

    @property
    def frame_rate(self) -> float:
        """Feature frames per second."""
        return self.config.frame_rate

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return self.config.embed_dim

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check(self, wav: torch.Tensor) -> torch.Tensor:
        if not isinstance(wav, torch.Tensor):
            wav = torch.as_tensor(wav)
        if wav.dim() != 1:
            raise ValueError(f"wav must be 1-D (samples,) at {self.expected_sample_rate} Hz. "
                             f"Found shape {tuple(wav.shape)}")
        if self.config.num_frames(wav.numel()) == 0:
            raise ValueError(f"wav is too short: {wav.numel()} samples give no frame (minimum "
                             f"{self.config.min_samples} samples)")
        if not torch.isfinite(wav).all():
            raise ValueError("wav contains NaN or infinite samples")
        return wav.float()

    def _normalize(self, wav: torch.Tensor) -> torch.Tensor:
        if self.config.normalize:
            return F.layer_norm(wav, wav.shape, eps=self.config.normalize_eps)
        return wav

    @torch.inference_mode()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav`` ``(samples,)`` at :attr:`expected_sample_rate` -> ``(frames, dim)`` float32 features."""
        return self._encode_chunked(self._normalize(self._check(wav).to(self.device)))

    def _run(self, batch: torch.Tensor, lengths: torch.Tensor | None):
        dtype = self.autocast
        with torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return self.model(batch, lengths, output_layer=self.layer)

    def _encode_chunked(self, x: torch.Tensor) -> torch.Tensor:
        pieces = []
        for start in range(0, x.numel(), self.max_chunk):
            chunk = x[start : start + self.max_chunk]
            if self.config.num_frames(chunk.numel()) == 0:
                continue  # a tail too short for one frame (fairseq would fail on it)
            feats, _ = self._run(chunk[None], None)
            pieces.append(feats[0])
        return torch.cat(pieces).float()

    @torch.inference_mode()
    def forward_batch(self, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Features of several utterances in one padded batch; each equals ``self(wav)`` up to float rounding.

        Utterances longer than ``max_chunk`` are encoded alone (chunked), as :meth:`forward` does.
        """
        wavs = [self._normalize(self._check(w).to(self.device)) for w in wavs]
        out: list[torch.Tensor | None] = [None] * len(wavs)
        short = [i for i, w in enumerate(wavs) if w.numel() <= self.max_chunk]
        for i in set(range(len(wavs))) - set(short):
            out[i] = self._encode_chunked(wavs[i])
        if short:
            lengths = torch.tensor([wavs[i].numel() for i in short], device=self.device)
            batch = torch.zeros(len(short), int(lengths.max()), device=self.device)
            for row, i in enumerate(short):
                batch[row, : wavs[i].numel()] = wavs[i]
            feats, frames = self._run(batch, lengths if len(short) > 1 else None)
            for row, i in enumerate(short):
                n = int(frames[row]) if frames is not None else feats.shape[1]
                out[i] = feats[row, :n].float()
        return out  # type: ignore[return-value]
