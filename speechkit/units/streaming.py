"""Units from an audio stream: HuBERT over a sliding window, k-means, and deduplication that carries its state.

HuBERT is not causal: its first convolution is normalised with statistics over the whole utterance, its positional
convolution sees 16 frames either side, and its attention sees everything. :class:`StreamingUnitEncoder` makes it
streamable with three bounded approximations, each a parameter:

- the group norm of the first convolution uses running statistics: the mean and covariance of every input window
  seen so far (folded into the convolution, as :meth:`ConvFeatureExtractor.forward_tiled` folds the utterance's);
  each frame's front-end features are computed once, when the frame first enters a window;
- the transformer sees ``left_context`` frames before the block it finalises and ``lookahead`` frames after it;
- blocks are ``block`` frames on a fixed grid of the input, so the units do not depend on how the input was cut.

Units of the lookahead frames are returned too, as *provisional*: a vocoder may use them as its own lookahead
without waiting (they are recomputed, final, with the next block).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

__all__ = ["StreamingUnitEncoder", "StreamingDeduplicator", "UnitBlock"]


@dataclass
class UnitBlock:
    """Frame-level units of one block: ``final`` for frames ``start .. start + len(final)``, then ``provisional``
    for the lookahead frames after it (their best guess so far)."""

    start: int
    final: torch.Tensor
    provisional: torch.Tensor

    @property
    def stop(self) -> int:
        return self.start + len(self.final)


class StreamingUnitEncoder:
    """Frame-level units of a 16 kHz (the encoder's rate) stream, a block at a time.

    Args:
        encoder: a :class:`~speechkit.units.SpeechEncoder` with a HuBERT reader.
        block: frames finalised per block (the unit hop, 20 ms for HuBERT).
        left_context: frames of context before the block.
        lookahead: frames of context after the block: what the latency costs.

    Example:
        >>> enc = StreamingUnitEncoder(SpeechEncoder.from_pretrained("checkpoints/default/encoder"))
        >>> blocks = [b for piece in pieces for b in enc.push(piece)] + enc.flush()
        >>> units = torch.cat([b.final for b in blocks])   # one unit per 20 ms frame
    """

    def __init__(self, encoder, *, block: int = 4, left_context: int = 50, lookahead: int = 8):
        from speechkit.units.hubert.reader import HubertFeatureReader

        if not isinstance(encoder.reader, HubertFeatureReader):
            raise ValueError(f"streaming needs a HuBERT encoder; this one reads {type(encoder.reader).__name__}")
        for name, value, low in (("block", block, 1), ("left_context", left_context, 0), ("lookahead", lookahead, 0)):
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}. Found {value!r}")
        self.encoder, self.reader = encoder, encoder.reader
        self.model = self.reader.model
        fe = self.model.feature_extractor
        self.hop, self.field = fe.hop, fe.receptive_field
        self.block, self.left, self.lookahead = int(block), int(left_context), int(lookahead)
        self._group_norm = fe.layers[0].norm_kind == "group"
        self._samples = torch.zeros(0)   # input from sample self._sample0 on
        self._sample0 = 0
        self._received = 0               # input samples pushed
        self._feats = None               # front-end features of frames self._feat0 ..
        self._feat0 = 0
        self._computed = 0               # frames whose front-end features exist
        self._next = 0                   # first frame of the next block
        kernel = fe.layers[0].kernel
        self._n, self._sum = 0, torch.zeros(kernel, dtype=torch.float64)
        self._outer = torch.zeros(kernel, kernel, dtype=torch.float64)
        self._wav_n, self._wav_sum, self._wav_sq = 0, 0.0, 0.0  # running waveform statistics (``normalize``)

    @property
    def frames_available(self) -> int:
        """Frames whose input has fully arrived."""
        return self.reader.config.num_frames(self._received)

    @property
    def samples_received(self) -> int:
        return self._received

    def push(self, wav: torch.Tensor) -> list[UnitBlock]:
        """Takes ``(samples,)`` at the encoder's rate; returns the blocks now final (possibly none)."""
        wav = torch.as_tensor(wav, dtype=torch.float32).reshape(-1)
        self._samples = torch.cat([self._samples, wav])
        self._received += wav.numel()
        if self.reader.config.normalize:
            self._wav_n += wav.numel()
            self._wav_sum += float(wav.double().sum())
            self._wav_sq += float((wav.double() ** 2).sum())
        out = []
        while self._next + self.block + self.lookahead <= self.frames_available:
            out.append(self._run_block(self._next, self._next + self.block))
        return out

    def flush(self) -> list[UnitBlock]:
        """The blocks left after the last input (the last ones see less lookahead, as the offline call does)."""
        out = []
        end = self.frames_available
        while self._next < end:
            out.append(self._run_block(self._next, min(self._next + self.block, end)))
        return out

    # ---------------------------------------------------------------- internals
    def _front_end(self, stop: int) -> None:
        """Computes the front-end features of frames ``self._computed .. stop``."""
        if stop <= self._computed:
            return
        fe = self.model.feature_extractor
        a = self._computed * self.hop - self._sample0
        x = self._samples[a: a + (stop - 1 - self._computed) * self.hop + self.field]
        if self.reader.config.normalize:  # the waveform's running mean and variance stand for the utterance's
            mean = self._wav_sum / self._wav_n
            var = max(self._wav_sq / self._wav_n - mean * mean, 0.0)
            x = (x - mean) / (var + self.reader.config.normalize_eps) ** 0.5
        with torch.inference_mode():
            if self._group_norm:  # every first-layer window of the input so far, each counted once
                kernel, stride = fe.layers[0].kernel, fe.layers[0].stride
                end = (stop - 1) * self.hop + self.field - self._sample0
                b = self._n * stride - self._sample0
                win = self._samples[b: end].double().unfold(0, kernel, stride)
                self._n += win.shape[0]
                self._sum += win.sum(0)
                self._outer += win.T @ win
                mean = self._sum / self._n
                first = fe.fold_group_norm(mean, self._outer / self._n - torch.outer(mean, mean))
            else:
                first = fe._first_layer(x)
            y = fe._tile(x.to(self.reader.device), first).float().cpu()
        self._feats = y if self._feats is None else torch.cat([self._feats, y])
        self._computed = stop

    def _run_block(self, start: int, stop: int) -> UnitBlock:
        w0, w1 = max(0, start - self.left), min(self.frames_available, stop + self.lookahead)
        self._front_end(w1)
        x = self._feats[w0 - self._feat0: w1 - self._feat0][None].to(self.reader.device)
        dtype = self.reader.autocast
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype or torch.bfloat16,
                                                    enabled=dtype is not None):
            m = self.model
            x = m.feature_norm(x)
            if m.feature_projection is not None:
                x = m.feature_projection(x)
            h = m.encoder(x, None, num_layers=self.reader.layer)[0].float()
            units = self.encoder.quantizer(h[start - w0:]).cpu()
        n = stop - start
        self._next = stop
        # forget what no later block reads: features before the next window, samples of computed frames
        keep_from = max(0, stop - self.left)
        if keep_from > self._feat0:
            self._feats = self._feats[keep_from - self._feat0:]
            self._feat0 = keep_from
        drop = self._computed * self.hop - self._sample0
        if drop > 0:
            self._samples = self._samples[drop:]
            self._sample0 += drop
        return UnitBlock(start, units[:n], units[n:])


class StreamingDeduplicator:
    """Run-length encoding across pieces: a run that spans a piece boundary is one unit with the summed duration.

    Example:
        >>> dd = StreamingDeduplicator()
        >>> dd.push(torch.tensor([5, 5, 2])), dd.push(torch.tensor([2, 7])), dd.flush()
        ((tensor([5]), tensor([2])), (tensor([2]), tensor([2])), (tensor([7]), tensor([1])))
    """

    def __init__(self):
        self._unit: int | None = None
        self._count = 0

    def push(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame-level units in; the runs now closed out (``units``, ``durations``)."""
        frames = torch.as_tensor(frames).reshape(-1)
        if frames.numel() == 0:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        values, counts = torch.unique_consecutive(frames, return_counts=True)
        values, counts = values.long().tolist(), counts.long().tolist()
        if self._unit is not None and values[0] == self._unit:
            counts[0] += self._count
        elif self._unit is not None:
            values.insert(0, self._unit)
            counts.insert(0, self._count)
        self._unit, self._count = values.pop(), counts.pop()
        return torch.tensor(values, dtype=torch.long), torch.tensor(counts, dtype=torch.long)

    def flush(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The last run."""
        if self._unit is None:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        out = torch.tensor([self._unit]), torch.tensor([self._count])
        self._unit, self._count = None, 0
        return out


def stream_units(encoder, chunks: Iterable[torch.Tensor], sample_rate: int, **options) -> Iterator[dict]:
    """``{"units", "durations"}`` of the closed runs as ``chunks`` (``(samples,)`` at ``sample_rate``) arrive;
    their concatenation is the deduplicated frame units (``options`` as :class:`StreamingUnitEncoder`)."""
    from speechkit.audio.streaming import StreamingResampler

    rs = StreamingResampler(sample_rate, encoder.expected_sample_rate)
    enc, dd = StreamingUnitEncoder(encoder, **options), StreamingDeduplicator()

    def runs(blocks: list[UnitBlock]) -> Iterator[dict]:
        for b in blocks:
            units, durations = dd.push(b.final)
            if units.numel():
                yield {"units": units, "durations": durations}

    for chunk in chunks:
        yield from runs(enc.push(rs.push(torch.as_tensor(chunk, dtype=torch.float32).reshape(-1))))
    yield from runs(enc.push(rs.flush()) + enc.flush())
    units, durations = dd.flush()
    if units.numel():
        yield {"units": units, "durations": durations}
