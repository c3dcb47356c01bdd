"""``speechkit train textlm``: a small Llama-style text LM, the stand-in for the pretrained text LMs TWIST starts from.

No pretrained text LM can be downloaded here, so this trains one on the project's text corpus
(:func:`speechkit.synth.text.prepare_text_corpus`): a byte-level BPE tokenizer (``tokenizers``) fitted on
the training text, then a ``LlamaForCausalLM`` trained with the unit-LM loop
(:func:`speechkit.train.ulm.train_causal_lm`: packed blocks, AdamW, warm-up + cosine, clipping, validation,
resume, DDP). The result, ``out/model``, is an ordinary Hugging Face folder (config, safetensors weights,
tokenizer) that ``UnitLM.warm_start`` reads like any other text LM.

The config is :class:`TextLMConfig`, the one source of every default (``speechkit/conf/textlm/config.yaml`` only names
it and the presets; ``speechkit train textlm --print-config`` shows the composed values).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from speechkit.train import distributed
from speechkit.train.ulm import ConfigError, LoopConfig, OptimConfig, train_causal_lm
from speechkit.utils.config import MISSING, from_values

__all__ = ["TextLMConfig", "train_tokenizer", "build_text_lm", "run"]

log = logging.getLogger(__name__)
SPECIALS = ["<pad>", "<s>", "</s>"]  # ids 0, 1, 2


@dataclass(kw_only=True)
class TextDataConfig:
    train: str = MISSING
    """Text file, one document a line (:func:`speechkit.data.corpora.text.read_documents`; required)."""
    valid: str | None = None
    """Text file for the validation loss (``None``: no validation)."""
    normalize: str = "none"
    """``none`` (the text as written) or ``asr`` (lower case, no punctuation, as ASR output and
    :func:`speechkit.metrics.wer.normalize_text`): the form a GenPPL judge of pocketsphinx transcripts needs.
    Recorded in ``model/text_lm.json``, which :class:`speechkit.metrics.genppl.TextLMScorer` reads."""


@dataclass(kw_only=True)
class TextModelConfig:
    """A Llama-style decoder (``transformers.LlamaConfig`` names)."""

    vocab_size: int = 2000
    """Byte-level BPE vocabulary fitted on ``data.train`` (3 specials + 256 bytes + merges)."""
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 688
    max_position_embeddings: int = 512
    """Longest context."""
    tie_word_embeddings: bool = False
    """Share input embeddings and LM head (OPT-style) or not (Llama-style)."""

    def validate(self) -> None:
        if self.vocab_size < len(SPECIALS) + 256:
            raise ConfigError(f"model.vocab_size must be >= {len(SPECIALS) + 256} (byte-level BPE holds the 256 "
                              f"bytes and {len(SPECIALS)} specials). Found {self.vocab_size}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"model.hidden_size={self.hidden_size} must divide by model.num_attention_heads="
                              f"{self.num_attention_heads}")


@dataclass(kw_only=True)
class TextOptimConfig(OptimConfig):
    """The unit LM's optimisation settings (:class:`~speechkit.train.ulm.OptimConfig`) with the text LM's
    defaults."""

    max_steps: int = 5000
    """Optimisation steps."""
    min_lr: float = 1e-4
    """Learning rate at the end of the cosine decay."""
    grad_clip: float = 1.0
    """Max global gradient norm (0 disables clipping)."""


@dataclass(kw_only=True)
class TextLoopConfig(LoopConfig):
    """The unit LM's loop settings (:class:`~speechkit.train.ulm.LoopConfig`) with the text LM's defaults."""

    block_size: int = 256
    """Tokens per training sequence (documents packed back to back)."""
    log_every: int = 50
    """Steps between progress lines (also appended to ``out/log.jsonl``)."""


@dataclass(kw_only=True)
class TextLMConfig:
    """The config of ``speechkit train textlm``."""

    data: TextDataConfig = field(default_factory=TextDataConfig)
    model: TextModelConfig = field(default_factory=TextModelConfig)
    optim: TextOptimConfig = field(default_factory=TextOptimConfig)
    out: str = MISSING
    """Run folder: ``tokenizer/``, ``checkpoint_last.pt``, ``model/`` (a Hugging Face text-LM folder), ``best/``,
    ``log.jsonl`` (required)."""
    train: TextLoopConfig = field(default_factory=TextLoopConfig)

    def validate(self) -> None:
        if self.data.normalize not in ("none", "asr"):
            raise ConfigError(f"data.normalize must be none or asr. Found {self.data.normalize!r}")
        for key in ("train", "valid"):
            path = getattr(self.data, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"data.{key}: {path}: no such text file")
        if self.train.block_size > self.model.max_position_embeddings:
            raise ConfigError(f"train.block_size={self.train.block_size} exceeds model.max_position_embeddings="
                              f"{self.model.max_position_embeddings}")
        self.model.validate()
        self.optim.validate()
        self.train.validate()


def train_tokenizer(docs: list[str], vocab_size: int):
    """A byte-level BPE tokenizer fitted on ``docs``, as a ``PreTrainedTokenizerFast`` (``<pad>`` 0, ``<s>`` 1,
    ``</s>`` 2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def build_text_lm(model: TextModelConfig, vocab_size: int, seed: int = 0):
    """A randomly initialised ``LlamaForCausalLM`` of the configured size."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=model.hidden_size,
                         num_hidden_layers=model.num_hidden_layers, num_attention_heads=model.num_attention_heads,
                         intermediate_size=model.intermediate_size,
                         max_position_embeddings=model.max_position_embeddings,
                         tie_word_embeddings=model.tie_word_embeddings, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def run(cfg) -> int:
    """Entry point of ``speechkit train textlm``: tokenizer, packed text, training, ``out/model``."""
    from transformers import PreTrainedTokenizerFast

    from speechkit.data.corpora.text import read_documents
    from speechkit.metrics.genppl import write_text_lm_info
    from speechkit.metrics.wer import normalize_text
    from speechkit.ulm.data import PackedBlocks

    conf = from_values(TextLMConfig, cfg, error=ConfigError, what="text-LM training config")
    out = Path(conf.out)

    def documents(path: str) -> list[str]:
        docs = read_documents(path)
        return [d for d in map(normalize_text, docs) if d] if conf.data.normalize == "asr" else docs

    train_docs = documents(conf.data.train)
    tok_dir = out / "tokenizer"
    if (tok_dir / "tokenizer.json").is_file():  # a resumed run keeps its tokenizer
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tok_dir))
    else:
        tokenizer = train_tokenizer(train_docs, conf.model.vocab_size)
        if distributed.is_main():
            tokenizer.save_pretrained(str(tok_dir))

    def blocks(docs: list[str], name: str) -> PackedBlocks:
        ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
        return PackedBlocks.from_sequences(([1, *x, 2] for x in ids), conf.train.block_size, name=name)

    train_blocks = blocks(train_docs, conf.data.train)
    valid_blocks = blocks(documents(conf.data.valid), conf.data.valid) if conf.data.valid else None
    model = build_text_lm(conf.model, len(tokenizer), seed=conf.train.seed)
    if distributed.is_main():
        n = sum(p.numel() for p in model.parameters())
        log.info("text LM: Llama %d x %d, %.2fM parameters, vocabulary %d; %d training tokens",
                 conf.model.hidden_size, conf.model.num_hidden_layers, n / 1e6, len(tokenizer),
                 train_blocks.num_tokens)

    def save_model(path: Path) -> None:
        model.save_pretrained(str(path), safe_serialization=True)
        tokenizer.save_pretrained(str(path))
        write_text_lm_info(path, conf.data.normalize, train=conf.data.train)

    metrics = train_causal_lm(model, train_blocks, valid_blocks, out=out, optim=conf.optim, loop=conf.train,
                              save_model=save_model, config=dataclasses.asdict(conf))
    if distributed.is_main():
        print(json.dumps(metrics))
    distributed.cleanup()
    return 0
