"""``speechkit prepare``: build corpora and manifests."""

from __future__ import annotations

import argparse
from pathlib import Path

MANIFEST_EXAMPLES = """examples:
  speechkit prepare manifest data/mini_expresso/audio_48khz/read -o data/read.tsv
  speechkit prepare manifest my_wavs/ -o my_wavs.tsv --ext wav flac
  speechkit prepare manifest data/mini_expresso/audio_48khz/read -o train.tsv \\
      --include data/mini_expresso/splits/train.txt

Unreadable files are skipped and listed with their reason in OUT.errors.tsv."""

MINI_EXPRESSO_EXAMPLES = """examples:
  speechkit prepare mini-expresso data/mini_expresso --minutes 2           # a small corpus for tests
  speechkit prepare mini-expresso data/mini_expresso_2h --minutes 120 --jobs 2

Speech is synthesised offline with espeak-ng + MBROLA (installed by `make install`). Re-running with the same
settings returns at once; an interrupted run resumes where it stopped."""


OWN_DATA_EXAMPLES = """examples:
  speechkit prepare own-data my_recordings/ -o data/mine                  # speaker = first folder level
  speechkit prepare own-data LibriSpeech/dev-clean -o data/ls --jobs 2    # transcripts from *.trans.txt
  speechkit prepare own-data clips/ -o data/clips --transcripts clips.txt --skip-bad

Re-running continues where an interrupted run stopped (converted files are kept); the split depends only on the
utterance ids and --seed."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter, shard

    prep = sub.add_parser("prepare", help="build corpora and manifests", formatter_class=HelpFormatter,
                          description="Build corpora and manifests.",
                          epilog="examples:\n  speechkit prepare mini-expresso data/mini_expresso --minutes 2\n"
                                 "  speechkit prepare manifest data/mini_expresso/audio_48khz/read -o read.tsv")
    corpora = prep.add_subparsers(dest="corpus", metavar="CORPUS", required=True)

    m = corpora.add_parser("manifest", help="fairseq audio tsv of a folder", formatter_class=HelpFormatter,
                           description="Write a fairseq audio tsv (root line, then relpath<TAB>num_samples).",
                           epilog=MANIFEST_EXAMPLES)
    m.add_argument("directory", type=Path, help="folder scanned recursively for audio files")
    m.add_argument("-o", "--output", type=Path, required=True, help="tsv file to write")
    m.add_argument("--ext", nargs="+", default=["wav", "flac", "ogg", "mp3"], help="file extensions to include")
    m.add_argument("--include", type=Path, default=None,
                   help="keep only files whose stem is listed in this file (first column; e.g. an Expresso "
                        "splits/train.txt)")
    m.set_defaults(func=_manifest)

    od = corpora.add_parser("own-data", help="a folder of your own recordings, made uniform for training",
                            formatter_class=HelpFormatter,
                            description="Find the utterances of AUDIO (a folder tree, LibriSpeech, the Expresso "
                                        "release or a manifest TSV), convert them to 16 kHz mono WAV under "
                                        "OUTPUT/wav/<speaker>/, split them per speaker into train/dev/test, and "
                                        "write utterances.tsv, splits/*.txt and fairseq manifests (recipes/own_data "
                                        "runs this first).",
                            epilog=OWN_DATA_EXAMPLES)
    od.add_argument("audio", type=Path, help="corpus folder, or manifest .tsv")
    od.add_argument("-o", "--output", type=Path, required=True, help="prepared corpus folder")
    od.add_argument("--layout", default="auto", choices=["auto", "folder", "librispeech", "expresso", "manifest"],
                    help="how AUDIO is laid out (auto detects)")
    od.add_argument("--transcripts", type=Path, default=None,
                    help="'<id><TAB><text>' lines (id = file stem), for layouts without transcripts")
    od.add_argument("--skip-bad", action="store_true",
                    help="go on without unreadable, empty or silent files (listed in OUTPUT/bad.tsv)")
    od.add_argument("--dev-fraction", type=float, default=0.05, help="share of each speaker's utterances for dev")
    od.add_argument("--test-fraction", type=float, default=0.05, help="share of each speaker's utterances for test")
    od.add_argument("--seed", type=int, default=0, help="seed of the split's hash")
    od.add_argument("--jobs", type=int, default=1, help="worker processes converting audio")
    od.set_defaults(func=_own_data)

    pl = corpora.add_parser("phone-labels", help="frame-level phone labels of a synthetic mini-Expresso manifest",
                            formatter_class=HelpFormatter,
                            description="Write the synthesiser's own phone of every frame of the files of MANIFEST "
                                        "as a labels jsonl (the targets of phone-target HuBERT training), and the "
                                        "corpus' phone inventory (phones.txt).",
                            epilog="examples:\n  speechkit prepare phone-labels data/mini_expresso_120 --manifest "
                                   "exp/train.tsv -o exp/phones/train.labels.jsonl\n  speechkit prepare phone-labels "
                                   "data/mini_expresso_120 --manifest exp/dev.tsv -o exp/phones/dev.labels.jsonl "
                                   "--inventory exp/phones/phones.txt")
    pl.add_argument("corpus", type=Path, help="synthetic mini-Expresso root (MBROLA voices)")
    pl.add_argument("--manifest", type=Path, required=True, help="tsv of read files of that corpus")
    pl.add_argument("-o", "--output", type=Path, required=True, help="labels jsonl to write")
    pl.add_argument("--inventory", type=Path, default=None,
                    help="phones.txt to use (made from the whole corpus when missing; default OUTPUT's folder)")
    pl.add_argument("--frame-rate", type=float, default=50.0, help="label frames per second")
    pl.set_defaults(func=_phone_labels)

    sc = corpora.add_parser("storycloze", help="synthetic spoken StoryCloze (sSC/ and tSC/ pairs)",
                            formatter_class=HelpFormatter,
                            description="Generate five-sentence test stories, their sSC negative (the other branch's "
                                        "ending) and tSC negative (another story's ending), speak them offline, and "
                                        "write the released folder layout.",
                            epilog="examples:\n  speechkit prepare storycloze data/storycloze --pairs 200 --voice us2")
    sc.add_argument("output", type=Path, help="output folder")
    sc.add_argument("--pairs", type=int, default=200, help="test stories: one sSC and one tSC pair each")
    sc.add_argument("--voice", default="us2", help="MBROLA voice (us1, us2, us3, en1)")
    sc.add_argument("--seed", type=int, default=0)
    sc.set_defaults(func=_storycloze)
    ss = corpora.add_parser("story-speech", help="speech of train stories, for unit-LM training",
                            formatter_class=HelpFormatter, description="Speak train stories (never the StoryCloze "
                            "test stories) with voices taking turns.",
                            epilog="examples:\n  speechkit prepare story-speech data/story_speech --stories 1000")
    ss.add_argument("output", type=Path, help="output folder")
    ss.add_argument("--stories", type=int, default=1000, help="train stories to speak")
    ss.add_argument("--voices", nargs="+", default=["us1", "us2", "us3", "en1"], help="voices taking turns")
    ss.add_argument("--seed", type=int, default=0)
    ss.add_argument("--shard", type=shard, default="0/1",
                    help="i/n: speak the i-th of n shards (0-based; run n at once)")
    ss.set_defaults(func=_story_speech)
    tc = corpora.add_parser("text-corpus", help="the project's text corpus, for the small text LM",
                            formatter_class=HelpFormatter, description="Train stories + everyday sentences, one "
                            "document a line: OUTPUT/train.txt and OUTPUT/valid.txt.",
                            epilog="examples:\n  speechkit prepare text-corpus data/text --stories 20000 "
                                   "--sentences 20000")
    tc.add_argument("output", type=Path, help="output folder")
    tc.add_argument("--stories", type=int, default=20_000, help="train stories (StoryCloze test stories never)")
    tc.add_argument("--sentences", type=int, default=20_000, help="everyday single sentences")
    tc.add_argument("--valid-fraction", type=float, default=0.02)
    tc.add_argument("--seed", type=int, default=0)
    tc.set_defaults(func=_text_corpus)

    e = corpora.add_parser("expresso", help="the Expresso dataset (real or mini) cut into <=15 s 16 kHz segments",
                           formatter_class=HelpFormatter,
                           description="Cut an Expresso-layout corpus (read speech and stereo dialogues) into short "
                                       "16 kHz segments with speaker, style and text, per split.",
                           epilog="examples:\n  speechkit prepare expresso /data/expresso data/expresso_16k\n"
                                  "  speechkit prepare expresso data/mini_expresso data/mini_expresso_16k --jobs 2")
    e.add_argument("root", type=Path, help="Expresso root (holds audio_48khz/, splits/, read_transcriptions.txt)")
    e.add_argument("output", type=Path, help="output folder ({split}.jsonl, {split}.tsv, audio)")
    e.add_argument("--sample-rate", type=int, default=16000, help="output sample rate")
    e.add_argument("--max-seconds", type=float, default=15.0, help="longest segment")
    e.add_argument("--jobs", type=int, default=1, help="worker processes")
    e.set_defaults(func=_expresso)

    s = corpora.add_parser("mini-expresso", help="synthetic corpus in the Expresso layout",
                           formatter_class=HelpFormatter, epilog=MINI_EXPRESSO_EXAMPLES,
                           description="Synthesise the offline mini-Expresso (4 speakers, 5 styles, read speech "
                                       "and stereo dialogues, transcripts, splits) in the real Expresso layout.")
    s.add_argument("output", type=Path, help="corpus root folder")
    s.add_argument("--minutes", type=float, default=2.0, help="total read speech to generate")
    s.add_argument("--seed", type=int, default=0, help="sentence and prosody seed")
    s.add_argument("--voices", choices=["auto", "mbrola", "espeak"], default="auto",
                   help="speaker voices: MBROLA (preferred) or espeak-ng formant voices")
    s.add_argument("--speakers", nargs="+", default=None, help="subset of speakers (default: all four)")
    s.add_argument("--styles", nargs="+", default=None, help="subset of styles (default: all)")
    s.add_argument("--conversations", type=int, default=1, help="dialogues per speaker pair and style pair")
    s.add_argument("--text", type=Path, default=None,
                   help="extra sentences, one a line (e.g. the WordNet usage sentences of "
                        "data_prep/wordnet_sentences.py), mixed with the grammar's")
    s.add_argument("--text-share", type=float, default=0.5, help="share of read utterances taken from --text")
    s.add_argument("--jobs", type=int, default=1, help="worker processes")
    s.set_defaults(func=_mini_expresso)
    from speechkit.cli.vdtts import add_prepare_parser
    add_prepare_parser(corpora)


def _phone_labels(args: argparse.Namespace) -> int:
    from speechkit.audio import io
    from speechkit.data.manifest import read_tsv
    from speechkit.data.phones import PhoneInventory, write_phone_labels
    from speechkit.synth.synthetic import phone_alignments

    root, entries = read_tsv(args.manifest)
    stems = {Path(e.path).stem: Path(e.path).with_suffix("").as_posix() for e in entries}
    alignments = phone_alignments(args.corpus, sorted(stems))
    inventory_path = args.inventory or args.output.with_name("phones.txt")
    if args.inventory is not None and args.inventory.is_file():
        inventory = PhoneInventory.load(args.inventory)
    else:  # every phone of the corpus, so that the labels of every split share one inventory
        inventory = PhoneInventory.from_alignments(phone_alignments(args.corpus))
        inventory.save(inventory_path)
    hop = 1 / args.frame_rate
    frames = {s: int(io.info(root / e.path).duration / hop + 0.5) for s, e in
              ((Path(e.path).stem, e) for e in entries)}
    write_phone_labels(alignments, frames, stems, inventory, hop, args.output)
    print(f"wrote {args.output}: {len(stems)} files, {len(inventory)} phones ({inventory_path})")
    return 0


def _storycloze(args: argparse.Namespace) -> int:
    from speechkit.synth.storycloze import prepare_storycloze

    root = prepare_storycloze(args.output, pairs=args.pairs, seed=args.seed, voice=args.voice)
    print(f"synthetic spoken StoryCloze ready in {root} (sSC/, tSC/: {args.pairs} pairs each)")
    return 0


def _story_speech(args: argparse.Namespace) -> int:
    from speechkit.synth.storycloze import prepare_story_speech

    index, count = args.shard
    root = prepare_story_speech(args.output, stories=args.stories, seed=args.seed, voices=tuple(args.voices),
                                shard=args.shard)
    done = "" if (root / ".complete").is_file() else f", shard {index}/{count} (other shards still to finish)"
    print(f"train-story speech ready in {root}/audio ({args.stories} stories{done})")
    return 0


def _text_corpus(args: argparse.Namespace) -> int:
    from speechkit.synth.text import prepare_text_corpus

    root = prepare_text_corpus(args.output, stories=args.stories, sentences=args.sentences, seed=args.seed,
                               valid_fraction=args.valid_fraction)
    print(f"text corpus ready: {root}/train.txt, {root}/valid.txt")
    return 0


def _expresso(args: argparse.Namespace) -> int:
    from speechkit.data.corpora.expresso import prepare_expresso

    out = prepare_expresso(args.root, args.output, sample_rate=args.sample_rate, max_seconds=args.max_seconds,
                           jobs=args.jobs)
    print(f"Expresso segments ready in {out}")
    return 0


def _manifest(args: argparse.Namespace) -> int:
    from speechkit.data.manifest import scan_audio, write_tsv
    from speechkit.errors import SpeechkitError
    from speechkit.utils.files import atomic_open

    entries, errors = scan_audio(args.directory, args.ext)
    if args.include is not None:
        if not args.include.is_file():
            raise SpeechkitError(f"{args.include}: no such file (--include)")
        keep = {line.split("\t")[0].strip() for line in args.include.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
        entries = [e for e in entries if Path(e.path).stem in keep]
        errors = [(rel, why) for rel, why in errors if Path(rel).stem in keep]
    errors_path = args.output.with_name(args.output.stem + ".errors.tsv")
    if errors:
        with atomic_open(errors_path) as f:
            f.writelines(f"{rel}\t{reason}\n" for rel, reason in errors)
        print(f"skipped {len(errors)} unreadable file(s); reasons in {errors_path}")
    else:
        errors_path.unlink(missing_ok=True)
    if not entries:
        raise SpeechkitError(f"{args.directory}: no readable audio files with extensions {args.ext}")
    write_tsv(args.output, args.directory, entries)
    print(f"wrote {args.output}: {len(entries)} files")
    return 0


def _mini_expresso(args: argparse.Namespace) -> int:
    from speechkit.synth.synthetic import prepare_mini_expresso

    root = prepare_mini_expresso(
        args.output, jobs=args.jobs, minutes=args.minutes, seed=args.seed, voices=args.voices,
        speakers=tuple(args.speakers) if args.speakers else None,
        styles=tuple(args.styles) if args.styles else None, conversations=args.conversations,
        text=str(args.text) if args.text else None, text_share=args.text_share,
    )
    print(f"mini-Expresso ready in {root} (see {root / 'README.txt'})")
    return 0


def _own_data(args: argparse.Namespace) -> int:
    import json

    from speechkit.data.corpora.own import prepare_own_data

    summary = prepare_own_data(args.audio, args.output, layout=args.layout, transcripts=args.transcripts,
                               skip_bad=args.skip_bad, dev_fraction=args.dev_fraction,
                               test_fraction=args.test_fraction, seed=args.seed, jobs=args.jobs)
    from speechkit.utils.files import write_json

    write_json(args.output / "summary.json", summary)
    print(json.dumps(summary))
    return 0
