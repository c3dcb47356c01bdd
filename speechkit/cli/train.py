"""``speechkit train TASK [hydra overrides]``: compose the task's Hydra config and run its solver.

Each task has a config folder ``speechkit/conf/<task>/`` with ``config.yaml`` (every field documented) and a
``preset/`` group (``preset=debug`` is the tiny CPU run used in CI). Under ``torchrun`` every process runs the
same command and the solver joins the process group.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

# task name -> (module with `run(cfg: omegaconf.DictConfig) -> int`, one example command line)
TASKS: dict[str, tuple[str, str]] = {
    "hubert": ("speechkit.train.hubert", "speechkit train hubert preset=debug data.train=train.tsv "
               "data.train_labels=labels.jsonl out=runs/hubert"),
    "kmeans": ("speechkit.train.kmeans", "speechkit train kmeans data=train.tsv features=mfcc k=100 out=runs/km"),
    "ulm": ("speechkit.train.ulm", "speechkit train ulm preset=debug data.train=train.jsonl data.valid=valid.jsonl "
            "data.num_units=100 model.text_lm=runs/textlm/model out=runs/ulm"),
    "dpo": ("speechkit.train.dpo", "speechkit train dpo preset=debug data.train=pairs/train.jsonl "
            "data.valid=pairs/valid.jsonl model.init=checkpoints/default/ulm out=runs/dpo"),
    "textlm": ("speechkit.train.textlm", "speechkit train textlm preset=debug data.train=data/text/train.txt "
               "data.valid=data/text/valid.txt out=runs/textlm"),
    "vocoder": ("speechkit.train.vocoder", "speechkit train vocoder preset=debug data.units=units.jsonl "
                "data.speaker=expresso data.style=expresso model.num_units=100 out=runs/vocoder"),
    "unit_mel": ("speechkit.train.unit_mel", "speechkit train unit_mel preset=debug data.units=units.jsonl "
                 "data.speaker=expresso data.style=expresso model.num_units=100 out=runs/unit_mel"),
    "mel_vocoder": ("speechkit.train.mel_vocoder", "speechkit train mel_vocoder preset=debug "
                    "data.audio=data/mini_expresso/audio_48khz/read out=runs/mel_hifigan"),
    "vocos": ("speechkit.train.vocos", "speechkit train vocos preset=debug "
              "data.audio=data/mini_expresso/audio_48khz/read out=runs/vocos"),
    "vdtts": ("speechkit.train.vdtts", "speechkit train vdtts preset=debug data.root=data/talking_face out=runs/vdtts"),
}

# task name -> its config dataclass ("module:Class"): the one source of every default. conf/<task>/config.yaml
# names it first (`- <task>_schema`), then its presets; Hydra refuses unknown keys and ill-typed values.
# (registered when the YAML names it).
SCHEMAS: dict[str, str] = {
    "hubert": "speechkit.units.hubert.train_config:HubertTrainConfig",
    "kmeans": "speechkit.units.train_config:KMeansTrainConfig",
    "ulm": "speechkit.train.ulm:UlmConfig",
    "dpo": "speechkit.train.dpo:DpoConfig",
    "textlm": "speechkit.train.textlm:TextLMConfig",
    "vocoder": "speechkit.vocoders.hifigan.train_config:VocoderTrainConfig",
    "unit_mel": "speechkit.vocoders.unitmel.train_config:UnitMelTrainConfig",
    "mel_vocoder": "speechkit.vocoders.hifigan.train_config:MelVocoderTrainConfig",
    "vocos": "speechkit.vocoders.vocos.train_config:VocosTrainConfig",
    "vdtts": "speechkit.vdtts.train_config:VDTTSTrainConfig",
}

# former spellings, refused with the one name every trainer now uses
RENAMED = {"train.out_dir": "out", "train.eval_every": "train.valid_every"}

EXAMPLES = """examples:
{lines}

Overrides are Hydra syntax (key=value, +new_key=value); `preset=debug` selects the tiny CPU preset.
Multi-process: torchrun --nproc_per_node=2 -m speechkit.cli.main train TASK ..."""


def conf_dir(task: str) -> Path:
    return Path(__file__).resolve().parent.parent / "conf" / task


def compose(task: str, overrides: list[str]):
    """The resolved config of ``task`` with ``overrides`` applied (an OmegaConf DictConfig)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from speechkit.errors import SpeechkitError

    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key in RENAMED:
            raise SpeechkitError(f"train {task}: {key}= is now {RENAMED[key]}= (one name across the trainers)")
    if f"{task}_schema" in (conf_dir(task) / "config.yaml").read_text(encoding="utf-8"):
        from hydra.core.config_store import ConfigStore

        ConfigStore.instance().store(name=f"{task}_schema", node=schema(task))
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir(task)), job_name=task):
            return hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else None
        head = " ".join(line for line in str(e).splitlines() if not line.startswith("To append"))
        detail = f"{head}: {str(cause).splitlines()[0]}" if cause is not None else head
        raise SpeechkitError(f"train {task}: bad config override ({detail})") from None
    except Exception as e:  # noqa: BLE001 - Hydra's own checks raise ValueError / TypeError (preset=1e-4, preset=[1,2])
        raise SpeechkitError(f"train {task}: bad config override ({type(e).__name__}: {e})") from None


def split_overrides(words: list[str]) -> tuple[list[str], bool]:
    """The Hydra overrides among the words after the task, and whether ``--print-config`` was one of them."""
    return [w for w in words if w != "--print-config"], "--print-config" in words


def schema(task: str) -> type:
    """The config dataclass of ``task``."""
    module, name = SCHEMAS[task].split(":")
    return getattr(importlib.import_module(module), name)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("train", help="train a model with a Hydra config", formatter_class=HelpFormatter,
                       description="Train a model. Tasks: " + ", ".join(sorted(TASKS)),
                       epilog=EXAMPLES.format(lines="\n".join(f"  {ex}" for _, ex in TASKS.values())))
    p.add_argument("task", choices=sorted(TASKS), help="what to train")
    # REMAINDER: --print-config may stand anywhere among the overrides (argparse cannot intermix a "*" positional)
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="Hydra overrides, e.g. preset=debug optim.lr=1e-4")
    p.add_argument("--print-config", action="store_true",
                   help="print the composed config (every default, the preset and the overrides) and exit")
    p.set_defaults(func=_run, train_parser=p)


def output_dir(cfg) -> Path | None:
    """The run folder of a composed config (``out``), where it is set."""
    from omegaconf import OmegaConf

    for key in ("out",):
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if isinstance(value, str) and value and value != "???":
            return Path(value)
    return None


def _run(args: argparse.Namespace) -> int:
    import os

    from speechkit.utils.files import exclusive

    if {"-h", "--help"} & set(args.overrides):
        args.train_parser.print_help()
        return 0
    overrides, printing = split_overrides(args.overrides)
    options = [w for w in overrides if w.startswith("--")]
    if options:
        from speechkit.errors import SpeechkitError

        raise SpeechkitError(f"train {args.task}: unknown option {options[0]} (options: --print-config; the rest are "
                             "Hydra overrides key=value)")
    cfg = compose(args.task, overrides)
    if args.print_config or printing:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg), end="")
        return 0
    solver = importlib.import_module(TASKS[args.task][0])
    out = output_dir(cfg)
    if out is None or int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun all ranks share the folder
        return int(solver.run(cfg) or 0)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out, "run folder"):  # two trainings in one folder would overwrite each other's checkpoints
        return int(solver.run(cfg) or 0)
