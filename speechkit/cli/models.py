"""``speechkit models`` (list the model cards) and ``speechkit download NAME`` (fetch one into the cache)."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    m = sub.add_parser("models", help="list the model cards (official releases and our bundle)",
                       formatter_class=HelpFormatter, description="List model cards: name, kind, size on disk, "
                       "licence, and whether the files are in the cache.",
                       epilog="examples:\n  speechkit models\n  speechkit models --kind vocoder")
    m.add_argument("--kind", default=None, help="only cards of this kind (hubert, speech-encoder, vocoder, unit-lm)")
    m.set_defaults(func=_models)
    d = sub.add_parser("download", help="fetch a model card's files into the cache", formatter_class=HelpFormatter,
                       description="Download (resumable) and verify a card's files, and the cards it requires.",
                       epilog="examples:\n  speechkit download hubert-base-ls960-kmeans-100\n"
                              "  SPEECHKIT_CACHE=/data/models speechkit download TWIST-350M\n\n"
                              "Offline, it prints where to put each file instead.")
    d.add_argument("name", help="card name (see `speechkit models`)")
    d.set_defaults(func=_download)


def _models(args: argparse.Namespace) -> int:
    from speechkit import hub

    rows = []
    for c in hub.list_cards():
        if args.kind and c.kind != args.kind:
            continue
        paths = [hub.cache_dir() / "files" / f.file for f in c.files]
        size = sum(p.stat().st_size for p in paths if p.exists())
        cached = "local" if c.path else ("yes" if paths and all(p.exists() for p in paths) else "no")
        rows.append((c.name, c.kind, f"{size / 1e6:.0f} MB" if size else "-", cached, c.license))
    width = [max(len(r[i]) for r in rows + [("name", "kind", "size", "cached", "licence")]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(("name", "kind", "size", "cached"), width, strict=True)) + "  licence")
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r[:4], width, strict=True)) + "  " + r[4])
    print(f"\ncache: {hub.cache_dir()}  (SPEECHKIT_CACHE to change, SPEECHKIT_OFFLINE=1 to never download)")
    return 0


def _download(args: argparse.Namespace) -> int:
    from speechkit import hub

    card = hub.load_card(args.name)
    for name in (*card.requires, card.name):
        for role, path in hub.fetch(name).items():
            print(f"{name} {role}: {path}")
    return 0
