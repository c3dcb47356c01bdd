"""VDTTS building blocks: text encoder, video encoder, multi-source decoder. No block reads a config.

Shapes: ``B`` batch, ``N`` phonemes, ``T`` video frames, ``r`` mel frames per video frame, ``d`` model width.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TextEncoder", "VideoEncoder", "DecoderLayer", "VDTTSModel", "AlignedVDTTSModel", "monotonic_alignment",
           "segment_positions", "sinusoids", "lengths_to_mask"]


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B,)`` lengths -> ``(B, max_len)`` bool, True at valid positions."""
    return torch.arange(max_len, device=lengths.device)[None] < lengths[:, None]


def sinusoids(length: int, dim: int, device=None) -> torch.Tensor:
    """``(length, dim)`` sinusoidal position encodings (Vaswani et al.)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    enc = torch.zeros(length, dim, device=device)
    enc[:, 0::2], enc[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return enc


class TextEncoder(nn.Module):
    """Phoneme embedding -> conv layers (kernel 5, batch norm, ReLU) -> bidirectional LSTM (Tacotron 2)."""

    def __init__(self, vocab_size: int, dim: int, conv_layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Sequential(nn.Conv1d(dim, dim, 5, padding=2), nn.BatchNorm1d(dim), nn.ReLU(),
                                                 nn.Dropout(dropout)) for _ in range(conv_layers))
        self.lstm = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` ids, ``(B,)`` lengths -> ``(B, N, d)``."""
        mask = lengths_to_mask(lengths, ids.shape[1])[:, None].float()
        x = self.embed(ids).transpose(1, 2)  # (B, d, N)
        for conv in self.convs:
            x = conv(x) * mask
        packed = nn.utils.rnn.pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])[0]


class VideoEncoder(nn.Module):
    """Mouth crops -> 3-D convolutions (each halves height and width, kernel 3 in time) -> spatial mean ->
    linear -> transformer layers over time.

    Args:
        channels: output channels of the conv layers.
        dim: output width.
        layers: transformer layers.
        num_heads: attention heads.
        dropout: dropout.
    """

    def __init__(self, channels: tuple[int, ...], dim: int, layers: int, num_heads: int, dropout: float):
        super().__init__()
        convs, c_in = [], 1
        for k, c in enumerate(channels):
            kernel = (3, 5, 5) if k == 0 else (3, 3, 3)
            convs += [nn.Conv3d(c_in, c, kernel, stride=(1, 2, 2), padding=tuple(s // 2 for s in kernel)),
                      nn.BatchNorm3d(c), nn.ReLU()]
            c_in = c
        self.convs = nn.Sequential(*convs)
        self.proj = nn.Linear(c_in, dim)
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(dim, num_heads, 2 * dim, dropout, batch_first=True,
                                                               norm_first=True) for _ in range(layers))

    def forward(self, crops: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W)`` grey crops in ``[0, 1]``, ``(B, T)`` valid mask -> ``(B, T, d)``."""
        x = self.convs((crops[:, None] - 0.5) / 0.25)  # (B, C, T, H', W')
        x = self.proj(x.mean(dim=(3, 4)).transpose(1, 2))  # (B, T, d)
        x = x + sinusoids(x.shape[1], x.shape[2], x.device)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        return x


class DecoderLayer(nn.Module):
    """Pre-norm self-attention over the video-rate queries, cross-attention over the text, feed-forward.

    Returns the cross-attention weights (averaged over heads) for the alignment loss and for inspection.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, x_mask, memory, memory_mask):
        """``x (B, T, d)``, ``x_mask (B, T)``, ``memory (B, N, d)``, ``memory_mask (B, N)`` (True = valid) ->
        ``(B, T, d)`` and attention ``(B, T, N)``."""
        h = self.norm1(x)
        x = x + self.drop(self.self_attn(h, h, h, key_padding_mask=~x_mask, need_weights=False)[0])
        h = self.norm2(x)
        ctx, attn = self.cross_attn(h, memory, memory, key_padding_mask=~memory_mask, need_weights=True)
        x = x + self.drop(ctx)
        return x + self.drop(self.ffn(self.norm3(x))), attn


class _MultiSource(nn.Module):
    """What both VDTTS decoders share: text encoder, video encoder (or, in the text-only ablation, learned position
    queries), speaker, the video-rate layers of multi-source attention (:class:`DecoderLayer`) and the residual
    postnet. Subclasses add their own mel path."""

    def __init__(self, *, vocab_size: int, num_speakers: int, dim: int, text_conv_layers: int,
                 video_channels: tuple[int, ...], video_layers: int, decoder_layers: int, num_heads: int,
                 speaker_dim: int, postnet_layers: int, num_mels: int, mel_per_frame: int, use_video: bool,
                 dropout: float, mel_mean: float, mel_std: float):
        super().__init__()
        self.use_video, self.r, self.num_mels = use_video, mel_per_frame, num_mels
        self.mel_mean, self.mel_std = mel_mean, mel_std
        self.text = TextEncoder(vocab_size, dim, text_conv_layers, dropout)
        self.video = VideoEncoder(video_channels, dim, video_layers, num_heads, dropout) if use_video else None
        self.query = None if use_video else nn.Parameter(torch.zeros(dim))
        self.rel_pos = nn.Linear(8, dim)
        self.speaker = nn.Embedding(num_speakers, speaker_dim)
        self.speaker_proj = nn.Linear(speaker_dim, dim)
        self.layers = nn.ModuleList(DecoderLayer(dim, num_heads, dropout) for _ in range(decoder_layers))
        self.norm = nn.LayerNorm(dim)
        mdim = dim // 2
        self.postnet = nn.ModuleList(nn.Sequential(nn.Conv1d(num_mels, mdim, 5, padding=2), nn.GroupNorm(1, mdim),
                                                   nn.Tanh(), nn.Conv1d(mdim, num_mels, 5, padding=2))
                                     for _ in range(postnet_layers))

    def _relative_position(self, frame_lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``(B, T, 8)``: sines and cosines of ``pi * k * t / length`` (where in the utterance a frame is)."""
        t = torch.arange(num_frames, device=frame_lengths.device)[None].float()
        frac = (t + 0.5) / frame_lengths[:, None].clamp(min=1).float()  # (B, T)
        k = torch.arange(1, 5, device=t.device).float()
        ang = math.pi * frac[..., None] * k
        return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)

    def attend(self, phonemes, phoneme_lengths, crops, frame_lengths, speakers):
        """The video-rate queries through the attention layers: ``(normalised output (B, T, d), text memory
        (B, N, d), text mask (B, N), last cross-attention (B, T, N))``."""
        num_frames = int(crops.shape[1]) if self.use_video else int(frame_lengths.max())
        frame_mask = lengths_to_mask(frame_lengths, num_frames)
        text_mask = lengths_to_mask(phoneme_lengths, phonemes.shape[1])
        memory = self.text(phonemes, phoneme_lengths)
        if self.use_video:
            x = self.video(crops, frame_mask)
        else:
            x = self.query.expand(len(phonemes), num_frames, -1)
            x = x + sinusoids(num_frames, x.shape[-1], x.device)
        x = x + self.rel_pos(self._relative_position(frame_lengths, num_frames))
        x = x + self.speaker_proj(self.speaker(speakers))[:, None]
        attn = None
        for layer in self.layers:
            x, attn = layer(x, frame_mask, memory, text_mask)
        return self.norm(x), memory, text_mask, attn

    def refine(self, mel0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``(B, M, L)`` -> log-mel ``(before the postnet, after)``, both ``(B, L, M)``."""
        mel = mel0
        for block in self.postnet:
            mel = mel + block(mel)
        return tuple((m * self.mel_std + self.mel_mean).transpose(1, 2) for m in (mel0, mel))


class VDTTSModel(_MultiSource):
    """Text + mouth-region video + speaker -> log-mel spectrogram, ``r`` mel frames per video frame.

    The decoder's queries are the video encoder's output (or, in the text-only ablation, learned embeddings of
    absolute and relative position) plus the speaker; its layers attend over the video sequence (self-attention)
    and over the text encoding (cross-attention): multi-source attention, run non-autoregressively at the video
    frame rate. The output is upsampled by ``r`` (linear projection per frame to ``r`` vectors of width
    ``dim / 2``, then residual convs at the mel rate) and refined by a residual postnet.
    """

    def __init__(self, *, vocab_size: int, num_speakers: int, dim: int, text_conv_layers: int,
                 video_channels: tuple[int, ...], video_layers: int, decoder_layers: int, num_heads: int,
                 speaker_dim: int, postnet_layers: int, num_mels: int, mel_per_frame: int, use_video: bool,
                 dropout: float, mel_mean: float, mel_std: float):
        super().__init__(vocab_size=vocab_size, num_speakers=num_speakers, dim=dim, text_conv_layers=text_conv_layers,
                         video_channels=video_channels, video_layers=video_layers, decoder_layers=decoder_layers,
                         num_heads=num_heads, speaker_dim=speaker_dim, postnet_layers=postnet_layers,
                         num_mels=num_mels, mel_per_frame=mel_per_frame, use_video=use_video, dropout=dropout,
                         mel_mean=mel_mean, mel_std=mel_std)
        mdim = dim // 2  # width at the mel rate (r times more frames: kept narrow)
        self.upsample = nn.Linear(dim, mel_per_frame * mdim)
        self.mel_convs = nn.ModuleList(nn.Sequential(nn.Conv1d(mdim, mdim, 5, padding=2), nn.GroupNorm(1, mdim),
                                                     nn.ReLU(), nn.Dropout(dropout)) for _ in range(2))
        self.to_mel = nn.Linear(mdim, num_mels)

    def forward(self, phonemes: torch.Tensor, phoneme_lengths: torch.Tensor, crops: torch.Tensor | None,
                frame_lengths: torch.Tensor, speakers: torch.Tensor):
        """Predicts the log-mel of every video frame.

        Args:
            phonemes: ``(B, N)`` ids (0 = padding).
            phoneme_lengths: ``(B,)``.
            crops: ``(B, T, H, W)`` grey mouth crops in ``[0, 1]`` (ignored by the text-only ablation, may be None).
            frame_lengths: ``(B,)`` video frames.
            speakers: ``(B,)`` speaker ids.

        Returns:
            ``(mel_before_postnet, mel)`` both ``(B, T * r, num_mels)`` log-mel, and the last layer's
            cross-attention ``(B, T, N)``.
        """
        x, _, _, attn = self.attend(phonemes, phoneme_lengths, crops, frame_lengths, speakers)
        x = self.upsample(x)  # (B, T, r * d)
        b, t = x.shape[:2]
        x = x.reshape(b, t * self.r, -1).transpose(1, 2)  # (B, d / 2, T * r)
        for conv in self.mel_convs:
            x = x + conv(x)
        mel0, mel = self.refine(self.to_mel(x.transpose(1, 2)).transpose(1, 2))  # from (B, M, T * r)
        return mel0, mel, attn


def monotonic_alignment(logp, num_phonemes: int) -> torch.Tensor:
    """The best monotonic path through per-frame class log-probabilities (Viterbi).

    Args:
        logp: ``(L, 1 + N')`` log-probabilities of each frame (class 0 = silence, class ``n`` = the ``n``-th
            phoneme, 1-based); columns past ``num_phonemes`` are ignored.
        num_phonemes: ``N <= N'``.

    Returns:
        ``(L,)`` long: the class of each frame. Every phoneme gets at least one frame, in order; silence may come
        before the first phoneme, between any two and after the last. Where ``L < N`` no such path exists and the
        phonemes are spread evenly instead.
    """
    import numpy as np

    lp = logp.detach().float().cpu().numpy() if isinstance(logp, torch.Tensor) else np.asarray(logp, np.float32)
    n, length = int(num_phonemes), lp.shape[0]
    if length < n or n == 0:
        return torch.as_tensor(np.minimum(np.arange(length) * max(n, 1) // max(length, 1), max(n - 1, 0)) + 1
                               if n else np.zeros(length, dtype=np.int64), dtype=torch.long)
    neg = -np.inf
    speech = lp[:, 1 : n + 1]  # (L, N)
    silence = lp[:, 0]
    # P[k]: in phoneme k; S[k]: in the silence after phoneme k (S[0]: before the first phoneme, index shifted by 1)
    p = np.full(n, neg)
    s = np.full(n + 1, neg)
    p[0], s[0] = speech[0, 0], silence[0]
    back_p = np.zeros((length, n), dtype=np.int8)      # 0 stay, 1 from previous phoneme, 2 from previous silence
    back_s = np.zeros((length, n + 1), dtype=np.int8)  # 0 stay, 1 from the phoneme before
    for t in range(1, length):
        prev_p = np.concatenate([[neg], p[:-1]])       # phoneme k-1
        prev_s = s[:-1]                                # silence after phoneme k-1
        cand = np.stack([p, prev_p, prev_s])
        back_p[t] = cand.argmax(0)
        new_p = cand.max(0) + speech[t]
        cand_s = np.stack([s, np.concatenate([[neg], p])])
        back_s[t] = cand_s.argmax(0)
        s = cand_s.max(0) + silence[t]
        p = new_p
    out = np.zeros(length, dtype=np.int64)
    in_speech, k = (True, n - 1) if p[n - 1] >= s[n] else (False, n)
    for t in range(length - 1, -1, -1):
        if in_speech:
            out[t] = k + 1
            move = back_p[t, k]
            if move == 1:
                k -= 1
            elif move == 2:
                in_speech = False  # the silence after phoneme k - 1 (= S[k])
        else:
            out[t] = 0
            if back_s[t, k] == 1:
                in_speech, k = True, k - 1
    return torch.from_numpy(out)


def segment_positions(alignment: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` frame classes -> ``(B, L, 8)``: where in its segment (a run of one class) each frame is: sines
    and cosines of ``pi * k * (i + 0.5) / n`` for ``k = 1..3``, ``log(n) / 4`` and ``i / 16`` clipped to 1 (``i``
    the frame's index in the run, ``n`` the run's length)."""
    feats = []
    for row in alignment:
        _, counts = torch.unique_consecutive(row, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        idx = torch.arange(len(row), device=row.device) - torch.repeat_interleave(starts, counts)
        length = torch.repeat_interleave(counts, counts).float()
        frac = (idx.float() + 0.5) / length
        ang = math.pi * frac[:, None] * torch.arange(1, 4, device=row.device).float()
        feats.append(torch.cat([torch.sin(ang), torch.cos(ang), torch.log(length)[:, None] / 4,
                                (idx.float() / 16).clamp(max=1)[:, None]], dim=-1))
    return torch.stack(feats)


class AlignedVDTTSModel(_MultiSource):
    """VDTTS with an explicit alignment path: the lips say which phoneme is spoken at every mel frame.

    1. *Aligner*: the video encoder's output (or, in the text-only ablation, position embeddings) plus the
       speaker, through decoder layers (self-attention over the video, cross-attention over the text, as in
       :class:`VDTTSModel`), upsampled to the mel rate, scores every mel frame against every phoneme (dot
       product with the phoneme encodings) and against silence: ``(B, L, 1 + N)`` log-probabilities. Trained with
       cross-entropy on the corpus's phoneme timings; at inference :func:`monotonic_alignment` picks the best
       path that says every phoneme once, in order.
    2. *Decoder* (FastSpeech-like, at the mel rate): each frame gets its phoneme's encoding (or a silence
       embedding), where in that phoneme it is (:func:`segment_positions`), the upsampled video features and the
       speaker; residual dilated convolutions -> log-mel, refined by a residual postnet. Trained on the true
       alignment (teacher forcing), so it learns from the first step which sound to make.

    Same inputs and outputs as :class:`VDTTSModel` (``forward`` returns ``(mel_before_postnet, mel, log_probs)``);
    ``alignment`` (``(B, L)``, class 0 = silence, ``n`` = the ``n``-th phoneme) replaces the aligner's choice.
    """

    def __init__(self, *, vocab_size: int, num_speakers: int, dim: int, text_conv_layers: int,
                 video_channels: tuple[int, ...], video_layers: int, decoder_layers: int, num_heads: int,
                 speaker_dim: int, postnet_layers: int, num_mels: int, mel_per_frame: int, use_video: bool,
                 dropout: float, mel_mean: float, mel_std: float, mel_layers: int):
        super().__init__(vocab_size=vocab_size, num_speakers=num_speakers, dim=dim, text_conv_layers=text_conv_layers,
                         video_channels=video_channels, video_layers=video_layers, decoder_layers=decoder_layers,
                         num_heads=num_heads, speaker_dim=speaker_dim, postnet_layers=postnet_layers,
                         num_mels=num_mels, mel_per_frame=mel_per_frame, use_video=use_video, dropout=dropout,
                         mel_mean=mel_mean, mel_std=mel_std)
        self.subframe = nn.Parameter(torch.zeros(mel_per_frame, dim))
        self.align_conv = nn.Sequential(nn.Conv1d(dim, dim, 5, padding=2), nn.GroupNorm(1, dim), nn.GELU())
        self.align_query = nn.Linear(dim, dim)
        self.align_key = nn.Linear(dim, dim)
        self.align_silence = nn.Linear(dim, 1)
        self.silence = nn.Parameter(torch.zeros(dim))
        self.seg_pos = nn.Linear(8, dim)
        self.dec_video = nn.Linear(dim, dim)
        self.dec_speaker = nn.Linear(speaker_dim, dim)
        dilations = [(1, 2, 4, 8)[k % 4] for k in range(mel_layers)]
        self.mel_convs = nn.ModuleList(nn.Sequential(nn.Conv1d(dim, dim, 5, padding=2 * d, dilation=d),
                                                     nn.GroupNorm(1, dim), nn.GELU(), nn.Dropout(dropout),
                                                     nn.Conv1d(dim, dim, 1)) for d in dilations)
        self.to_mel = nn.Linear(dim, num_mels)

    def align_log_probs(self, phonemes, phoneme_lengths, crops, frame_lengths, speakers):
        """``(log_probs (B, L, 1 + N), text memory (B, N, d), mel-rate features (B, L, d), last cross-attention
        (B, T, N))`` with ``L = T * r``; invalid phoneme columns are ``-inf``."""
        x, memory, text_mask, attn = self.attend(phonemes, phoneme_lengths, crops, frame_lengths, speakers)
        b, t, d = x.shape
        h = (x[:, :, None, :] + self.subframe[None, None]).reshape(b, t * self.r, d)  # (B, L, d)
        h = h + self.align_conv(h.transpose(1, 2)).transpose(1, 2)
        q = self.align_query(h)
        k = self.align_key(memory)
        scores = torch.einsum("bld,bnd->bln", q, k) / math.sqrt(d)
        scores = scores.masked_fill(~text_mask[:, None, :], float("-inf"))
        logits = torch.cat([self.align_silence(h), scores], dim=-1)
        return torch.log_softmax(logits.float(), dim=-1), memory, h, attn

    def decode(self, memory, features, alignment, speakers):
        """Log-mel ``(mel_before_postnet, mel)``, both ``(B, L, M)``, for frame classes ``alignment (B, L)``."""
        b, length, d = features.shape
        table = torch.cat([self.silence.to(memory.dtype).expand(b, 1, d), memory], dim=1)  # (B, 1 + N, d)
        idx = alignment.clamp(0, table.shape[1] - 1)
        x = torch.gather(table, 1, idx[..., None].expand(-1, -1, d))
        x = x + self.seg_pos(segment_positions(alignment).to(x.dtype))
        x = x + self.dec_video(features) + self.dec_speaker(self.speaker(speakers))[:, None]
        x = x.transpose(1, 2)
        for conv in self.mel_convs:
            x = x + conv(x)
        return self.refine(self.to_mel(x.transpose(1, 2)).transpose(1, 2))  # from (B, M, L)

    def forward(self, phonemes: torch.Tensor, phoneme_lengths: torch.Tensor, crops: torch.Tensor | None,
                frame_lengths: torch.Tensor, speakers: torch.Tensor, alignment: torch.Tensor | None = None):
        """Predicts the log-mel of every video frame (see :meth:`VDTTSModel.forward`); ``alignment`` (training:
        the true one) or, when None, the best monotonic path through the aligner's log-probabilities.

        Returns:
            ``(mel_before_postnet, mel, log_probs)``, mels ``(B, T * r, num_mels)``, log-probs ``(B, T * r, 1 + N)``.
        """
        logp, memory, h, _ = self.align_log_probs(phonemes, phoneme_lengths, crops, frame_lengths, speakers)
        if alignment is None:
            alignment = self.best_alignment(logp, phoneme_lengths, frame_lengths)
        mel0, mel = self.decode(memory, h, alignment, speakers)
        return mel0, mel, logp

    def best_alignment(self, logp, phoneme_lengths, frame_lengths) -> torch.Tensor:
        """``(B, L)`` frame classes: :func:`monotonic_alignment` of each item (its valid frames; silence after)."""
        out = torch.zeros(logp.shape[:2], dtype=torch.long, device=logp.device)
        for i, (n, f) in enumerate(zip(phoneme_lengths.tolist(), frame_lengths.tolist(), strict=True)):
            length = f * self.r
            out[i, :length] = monotonic_alignment(logp[i, :length], n).to(logp.device)
        return out
