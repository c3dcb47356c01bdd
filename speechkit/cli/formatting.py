"""The help formatter every ``speechkit`` command shares (its own module: subcommands import it without importing
the entry point that imports them)."""

from __future__ import annotations

import argparse
import re

__all__ = ["HelpFormatter", "renamed", "shard"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps example blocks as written and shows each default once: not where the help already says it, and not
    for flags (``False``) or options without one (``None``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if re.search(r"%\(default\)|\(default\b|default:", text, re.IGNORECASE) \
                or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def renamed(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Makes ``old`` (a former spelling of option ``new``) a hidden option that stops with a hint naming ``new``."""

    class _Renamed(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(f"{old} is now {new} (one name for it across the commands)")

    parser.add_argument(old, nargs="?", action=_Renamed, help=argparse.SUPPRESS)


def shard(value: str) -> tuple[int, int]:
    """The argparse type of every ``--shard i/n`` option: ``(i, n)`` with ``0 <= i < n``, or a usage error."""
    try:
        index, count = (int(v) for v in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like i/n (e.g. 0/4). Found {value!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"{value}: needs 0 <= i < n")
    return index, count
