"""Model cards: official releases by name -> verified local files.

Cards live in ``checkpoints/cards/*.yaml`` (one list of cards per file). A card names its files (``role: {file,
url, sha256}``), its licence, rates, layer, vocabulary size and the speechkit class that loads it; cards may
``require`` other cards (a quantizer needs its dense model).

:func:`fetch` returns local paths: files already in the cache are used as they are (checked against their sha256
once, then remembered in a ``.verified`` marker); missing files are downloaded with resume (an interrupted
download continues from its ``.part`` file with an HTTP Range request), verified (a mismatch deletes the file and
raises) and moved into place. Nothing is downloaded at import time.

- cache: ``$SPEECHKIT_CACHE``, default ``~/.cache/speechkit`` (``$XDG_CACHE_HOME`` respected); files are stored
  flat under ``<cache>/files/<file name>``.
- offline: ``SPEECHKIT_OFFLINE=1`` (or a network failure) raises :class:`OfflineError` naming the card, the file,
  the URL to fetch elsewhere and the exact path to put it at.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from speechkit.errors import SpeechkitError

__all__ = ["Card", "CardFile", "HubError", "OfflineError", "ChecksumError", "cards_dir", "cache_dir", "list_cards",
           "load_card", "fetch", "is_cached"]

_CHUNK = 1 << 20


class HubError(SpeechkitError, ValueError):
    """An unknown card or a failed download."""


class OfflineError(HubError):
    """A file is needed, not cached, and cannot be downloaded here."""


class ChecksumError(HubError):
    """A downloaded or cached file does not have the card's sha256."""


@dataclass(frozen=True)
class CardFile:
    """One file of a card: its name in the cache, where to download it, its sha256 (or ``None``)."""

    role: str
    file: str
    url: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Card:
    """An official release (or our own bundle) by name. See ``checkpoints/cards/*.yaml``."""

    name: str
    kind: str
    loader: str
    files: tuple[CardFile, ...]
    description: str = ""
    license: str = "unknown"
    source: str = ""
    requires: tuple[str, ...] = ()
    encoder: str | None = None
    sample_rate: int | None = None
    frame_rate: float | None = None
    layer: int | None = None
    vocab_size: int | None = None
    unpack: str | None = None
    path: str | None = None  # a local folder (our bundle), relative to the repository root
    extra: dict = field(default_factory=dict)

    def file(self, role: str) -> CardFile:
        for f in self.files:
            if f.role == role:
                return f
        raise HubError(f"card {self.name!r} has no {role!r} file (it has {[f.role for f in self.files]})")


def cards_dir() -> Path:
    """``checkpoints/cards`` of this checkout (``$SPEECHKIT_CARDS`` overrides)."""
    env = os.environ.get("SPEECHKIT_CARDS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "checkpoints" / "cards"


def cache_dir() -> Path:
    """Where downloads go: ``$SPEECHKIT_CACHE``, else ``$XDG_CACHE_HOME/speechkit``, else ``~/.cache/speechkit``."""
    env = os.environ.get("SPEECHKIT_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "speechkit"


_KNOWN = {f for f in Card.__dataclass_fields__} - {"files", "extra"}


def _parse(entry: dict, source: Path) -> Card:
    if not isinstance(entry, dict) or "name" not in entry or "kind" not in entry:
        raise HubError(f"{source}: every card needs 'name' and 'kind'; found {entry!r}")
    for key in ("name", "kind"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise HubError(f"{source}: a card's {key!r} must be a non-empty string; found {entry[key]!r}")
    files = []
    if not isinstance(entry.get("files") or {}, dict):
        raise HubError(f"{source}: card {entry['name']!r}: 'files' maps a role to a file")
    for role, spec in (entry.get("files") or {}).items():
        if isinstance(spec, str):
            spec = {"file": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
            raise HubError(f"{source}: card {entry['name']!r}: file {role!r} needs a 'file' name; found {spec!r}")
        name = spec["file"]
        if not name or name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name or "\\" in name:
            raise HubError(f"{source}: card {entry['name']!r}: file name {name!r} must be a plain relative path "
                           "inside the cache (no '..', no absolute path)")
        files.append(CardFile(role, spec["file"], spec.get("url"), spec.get("sha256")))
    known = {k: v for k, v in entry.items() if k in _KNOWN}
    known["requires"] = tuple(known.get("requires") or ())
    extra = {k: v for k, v in entry.items() if k not in _KNOWN and k != "files"}
    return Card(files=tuple(files), extra=extra, **{"loader": "", **known})


def list_cards() -> list[Card]:
    """Every card in :func:`cards_dir`, sorted by name."""
    import yaml

    from speechkit.utils.files import loading, read_text

    cards: dict[str, Card] = {}
    for path in sorted(cards_dir().glob("*.yaml")):
        with loading(path, "model-card file (YAML list of cards)", HubError):
            entries = yaml.safe_load(read_text(path, HubError)) or []
            if not isinstance(entries, list):
                raise HubError(f"{path}: a card file holds a YAML list of cards; found {type(entries).__name__}")
            for entry in entries:
                card = _parse(entry, path)
                if card.name in cards:
                    raise HubError(f"{path}: card {card.name!r} is defined twice")
                cards[card.name] = card
    return sorted(cards.values(), key=lambda c: c.name)


def load_card(name: str) -> Card:
    """The card called ``name``.

    Raises:
        HubError: no such card (the message suggests close names).
    """
    import difflib

    cards = {c.name: c for c in list_cards()}
    if name in cards:
        return cards[name]
    close = difflib.get_close_matches(name, cards, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `speechkit models` lists them"
    raise HubError(f"no model card named {name!r}{hint}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path, f: CardFile, card: Card) -> bool:
    """Checks a cached file once against its sha256 (remembered by a marker beside it)."""
    if f.sha256 is None:
        return True
    marker = path.with_name(path.name + ".verified")
    if marker.exists() and marker.read_text().strip() == f.sha256:
        return True
    if _sha256(path) != f.sha256:
        raise ChecksumError(f"{path}: sha256 does not match card {card.name!r} ({f.sha256[:12]}...); delete the "
                            "file and fetch it again")
    marker.write_text(f.sha256)
    return True


def is_cached(card: Card) -> bool:
    """True when every file of ``card`` (not of the cards it requires) is in the cache."""
    return all((cache_dir() / "files" / f.file).exists() for f in card.files)


def _offline_error(card: Card, f: CardFile, target: Path, why: str) -> OfflineError:
    where = f"download {f.url} elsewhere and " if f.url else ""
    return OfflineError(f"card {card.name!r} needs {f.file!r} ({f.role}), which is not in the cache ({why}): "
                        f"{where}place it at {target} (or set SPEECHKIT_CACHE to a folder holding files/{f.file})")


def _download(card: Card, f: CardFile, target: Path, progress: bool) -> None:
    from tqdm import tqdm

    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(f.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)  # noqa: S310 - card URLs, http(s) or file
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the .part is already complete
            response = None
        else:
            raise HubError(f"card {card.name!r}: downloading {f.url} failed (HTTP {e.code})") from None
    except (urllib.error.URLError, OSError) as e:
        raise _offline_error(card, f, target, f"no network: {getattr(e, 'reason', e)}") from None
    if response is not None:
        with response:
            resumed = have and getattr(response, "status", 200) == 206
            mode = "ab" if resumed else "wb"
            total = response.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            bar = tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True, desc=f.file,
                       disable=None if progress else True)
            with open(part, mode) as out, bar:
                try:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
                    short = total is not None and out.tell() < total
                except (http.client.IncompleteRead, OSError):
                    short = True
            if short:
                raise HubError(f"card {card.name!r}: download of {f.file} interrupted after {part.stat().st_size} "
                               f"bytes; {part} keeps them: fetch again to resume")
    if f.sha256 is not None:
        digest = _sha256(part)
        if digest != f.sha256:
            part.unlink()
            raise ChecksumError(f"card {card.name!r}: {f.url} has sha256 {digest[:12]}..., the card says "
                                f"{f.sha256[:12]}...; the partial file was deleted")
        target.with_name(target.name + ".verified").write_text(f.sha256)
    os.replace(part, target)


def fetch(name: str, *, offline: bool | None = None, progress: bool = True) -> dict[str, Path]:
    """Local paths of a card's files (downloading what is missing), keyed by role.

    A card with ``path`` (our own bundle) returns ``{"folder": <path>}`` without touching the cache. Files of
    ``unpack: zip`` cards are extracted once into ``<cache>/unpacked/<card>`` (returned under the same role).

    Args:
        name: card name.
        offline: never download; ``None`` reads ``SPEECHKIT_OFFLINE``.
        progress: show download progress bars.

    Raises:
        HubError: no such card, or a card's file cannot be used.
        OfflineError: a file is missing and downloading is off or impossible (the message says where to put it).
        ChecksumError: a downloaded file does not match the card's sha256 (it is deleted).
    """
    card = load_card(name)
    if card.path is not None:
        folder = (cards_dir().parent.parent / card.path).resolve()
        if not folder.exists():
            raise HubError(f"card {name!r} points at {folder}, which does not exist")
        return {"folder": folder}
    if offline is None:
        offline = os.environ.get("SPEECHKIT_OFFLINE", "") not in ("", "0", "false", "no")
    root = cache_dir() / "files"
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for f in card.files:
        target = root / f.file
        if not target.exists():
            if offline:
                raise _offline_error(card, f, target, "SPEECHKIT_OFFLINE is set")
            if f.url is None:
                raise _offline_error(card, f, target, "the card has no URL")
            _download(card, f, target, progress)
        _verified(target, f, card)
        out[f.role] = _unpacked(card, f, target) if card.unpack == "zip" else target
    return out


def _unpacked(card: Card, f: CardFile, archive: Path) -> Path:
    dest = cache_dir() / "unpacked" / card.name
    if not (dest / ".complete").exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    member = info.filename
                    if member.startswith(("/", "\\")) or ".." in Path(member).parts or ":" in member:
                        raise HubError(f"{archive}: refusing to extract {member!r} outside the target folder")
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise HubError(f"{archive}: refusing to extract {member!r}, a symbolic link")
                z.extractall(tmp)
        except zipfile.BadZipFile as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise HubError(f"{archive}: not a readable zip archive ({e})") from None
        except HubError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        (dest / ".complete").write_text(f.file)
    inner = [p for p in dest.iterdir() if not p.name.startswith(".")]
    return inner[0] if len(inner) == 1 and inner[0].is_dir() else dest


DEFAULT_MODEL = "checkpoints/default"
"""The bundle speechkit trained itself (``checkpoints/default`` of the repository): the CLI's and the Python API's
default model. ``$SPEECHKIT_DEFAULT_MODEL`` points elsewhere (a copy of it, for an installed wheel)."""


def local_model_dir(path: str | os.PathLike) -> Path:
    """``path`` as given when it exists; a relative path that does not exist from the working directory is looked
    up under the repository root too (so ``checkpoints/default`` works from anywhere in an editable install).
    :data:`DEFAULT_MODEL` is ``$SPEECHKIT_DEFAULT_MODEL`` where that is set.

    Raises:
        HubError: :data:`DEFAULT_MODEL` is asked for and is not there (an installed wheel has no checkout).
    """
    if Path(path) == Path(DEFAULT_MODEL):
        found = Path(os.environ.get("SPEECHKIT_DEFAULT_MODEL") or _in_checkout(path))
        if not found.is_dir():
            raise HubError(f"{found}: the default bundle is not there. It ships in the speechkit repository "
                           "(checkpoints/default, with `make demo`); with an installed wheel, set "
                           "SPEECHKIT_DEFAULT_MODEL to a copy of that folder, or give a model folder or card name")
        return found
    return _in_checkout(path)


def _in_checkout(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    in_repo = Path(__file__).resolve().parents[1] / p
    return in_repo if in_repo.exists() else p


def is_card_name(name_or_path) -> bool:
    """True when ``name_or_path`` is not an existing path and looks like a card name (no path separator)."""
    s = str(name_or_path)
    return not Path(s).exists() and "/" not in s and "\\" not in s and not s.startswith(".")


def fetch_kind(name: str, kind: str) -> tuple[Card, dict[str, Path]]:
    """:func:`fetch` for a card that must be of ``kind`` (the loader's kind), with a clear error otherwise."""
    card = load_card(name)
    if card.kind != kind and card.path is None:
        raise HubError(f"card {name!r} is a {card.kind}, not a {kind}; `speechkit models --kind {kind}` lists those")
    return card, fetch(name)
