"""LibriSpeech reader: the corpus's own folder layout -> manifest records.

Layout (as distributed on openslr.org, and as the synthetic speech corpus writes it)::

    ROOT/                              (the folder named LibriSpeech/, or its parent)
      train-clean-100/                 one folder per split
        103/                           speaker
          1240/                        chapter
            103-1240.trans.txt         "UTTID TRANSCRIPT" per line, upper case
            103-1240-0000.flac
            103-1240-0001.flac
      dev-clean/ ...

One record per utterance: ``kind="speech"``, ``corpus="librispeech"``, ``split`` the split
folder's name, ``speaker`` the speaker folder, ``text`` the transcript exactly as given (upper
case; ``singalign.text`` normalizes it for the model). The duration comes from the file header
(``soundfile.info``); no audio is decoded, so reading all 280k utterances takes minutes, not hours.

Problems inside the corpus (a transcript line without its audio file, an audio file without a
transcript line, a malformed or empty transcript file, an unreadable header) raise a
``SingalignError`` naming the file when ``strict=True`` (the default: a corpus on disk should be
complete, and a silent gap would change the training set without anyone noticing). With
``strict=False`` each problem is logged as a warning naming the file and the utterance is skipped,
so a partly downloaded corpus can still be used. A missing root or split folder always raises.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from singalign.data.manifest import Record
from singalign.errors import AudioError, SingalignError

log = logging.getLogger(__name__)

#: Audio extension of LibriSpeech utterances.
AUDIO_EXT = ".flac"
_TRANS_SUFFIX = ".trans.txt"


def audio_duration(path: str | os.PathLike[str]) -> float:
    """Duration in seconds of an audio file, read from its header (nothing decoded).

    Raises:
        AudioError: the file is missing, unreadable or empty, naming the file.
    """
    import soundfile as sf  # light, but keep module import instant

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError/LibsndfileError/OSError
        raise AudioError(f"{path}: cannot read audio header ({exc})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: audio file is empty")
    return info.frames / info.samplerate


def report_problem(message: str, strict: bool, error: type[SingalignError] = SingalignError) -> None:
    """Raise ``error(message)`` when ``strict``, else log ``message`` as a warning."""
    if strict:
        raise error(message)
    log.warning("%s (skipped)", message)


def _has_chapters(folder: Path) -> bool:
    """True if ``folder`` looks like a split: SPEAKER/CHAPTER/ with a transcript or flac inside."""
    for pattern in (f"*/*/*{_TRANS_SUFFIX}", f"*/*/*{AUDIO_EXT}"):
        if next(folder.glob(pattern), None) is not None:
            return True
    return False


def find_splits(root: str | os.PathLike[str]) -> dict[str, Path]:
    """The split folders under a LibriSpeech root, by name (sorted).

    ``root`` may be the corpus folder (holding ``train-clean-100``, ``dev-clean``, ...), its parent
    (holding ``LibriSpeech/``), or a single split folder (holding speaker folders).

    Raises:
        SingalignError: ``root`` is missing or holds no split.
    """
    root = Path(root)
    if not root.is_dir():
        raise SingalignError(f"{root}: LibriSpeech folder not found")
    if (root / "LibriSpeech").is_dir():
        root = root / "LibriSpeech"
    splits = {d.name: d for d in sorted(root.iterdir()) if d.is_dir() and _has_chapters(d)}
    if not splits and _has_chapters(root):
        splits = {root.name: root}
    if not splits:
        raise SingalignError(
            f"{root}: no LibriSpeech split found (expected SPLIT/SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt)"
        )
    return splits


def read_transcript(path: Path, prefix: str) -> list[tuple[str, str]]:
    """``(utterance id, transcript)`` pairs of one ``*.trans.txt`` file, in file order.

    Args:
        path: the transcript file.
        prefix: ``"SPEAKER-CHAPTER-"``; every id must start with it.

    Raises:
        SingalignError: the file is empty, a line lacks a transcript, an id does not belong to the
            chapter, or an id repeats; the message names the file and line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SingalignError(f"{path}: cannot read transcript ({exc})") from exc
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2:
            raise SingalignError(f"{path}:{number}: expected 'UTTERANCE-ID TRANSCRIPT', got {line.strip()!r}")
        utt, words = parts
        if not utt.startswith(prefix) or not re.fullmatch(r"\d+", utt[len(prefix) :]):
            raise SingalignError(f"{path}:{number}: utterance id {utt!r} does not match {prefix}NNNN")
        if utt in seen:
            raise SingalignError(f"{path}:{number}: utterance id {utt!r} repeats")
        seen.add(utt)
        pairs.append((utt, words))
    if not pairs:
        raise SingalignError(f"{path}: transcript file is empty")
    return pairs


def _read_chapter(chapter: Path, split: str, strict: bool) -> list[Record]:
    speaker = chapter.parent.name
    prefix = f"{speaker}-{chapter.name}-"
    trans = chapter / f"{speaker}-{chapter.name}{_TRANS_SUFFIX}"
    audio = {p.name[: -len(AUDIO_EXT)]: p for p in chapter.glob(f"*{AUDIO_EXT}")}
    if not trans.is_file():
        if audio:
            report_problem(f"{trans}: transcript missing for {len(audio)} audio files", strict)
        return []
    try:
        pairs = read_transcript(trans, prefix)
    except SingalignError as exc:
        report_problem(str(exc), strict)
        return []
    records = []
    for utt, words in pairs:
        path = audio.pop(utt, None)
        if path is None:
            report_problem(f"{chapter / (utt + AUDIO_EXT)}: audio missing for a line of {trans.name}", strict)
            continue
        try:
            duration = audio_duration(path)
        except AudioError as exc:
            report_problem(str(exc), strict, AudioError)
            continue
        records.append(
            Record(
                id=utt,
                corpus="librispeech",
                kind="speech",
                split=split,
                audio=str(path.resolve()),
                offset=0.0,
                duration=duration,
                text=words,
                speaker=speaker,
                extra={"chapter": chapter.name},
            )
        )
    for utt in sorted(audio):
        report_problem(f"{audio[utt]}: no line for {utt} in {trans.name}", strict)
    return records


def read_librispeech(
    root: str | os.PathLike[str], splits: Iterable[str] | None = None, *, strict: bool = True
) -> list[Record]:
    """Read LibriSpeech (or a corpus in its layout) into manifest records.

    Args:
        root: the ``LibriSpeech/`` folder, its parent, or one split folder.
        splits: split folder names to read (e.g. ``["train-clean-100", "dev-clean"]``);
            None reads every split found.
        strict: raise on a problem inside the corpus (default); False warns and skips the utterance.

    Returns:
        One ``kind="speech"`` record per utterance, ordered by split, speaker, chapter, then
        transcript order. ``audio`` is an absolute path; ``duration`` in seconds.

    Raises:
        SingalignError: ``root`` or a requested split is missing, or (strict) a corpus problem,
            naming the file.
    """
    from tqdm import tqdm

    found = find_splits(root)
    if splits is None:
        chosen = found
    else:
        chosen = {}
        for name in splits:
            if name not in found:
                raise SingalignError(
                    f"{Path(root) / name}: LibriSpeech split not found (found: {', '.join(found) or 'none'})"
                )
            chosen[name] = found[name]
    chapters = [
        (name, chapter)
        for name, folder in chosen.items()
        for speaker in sorted(p for p in folder.iterdir() if p.is_dir())
        for chapter in sorted(p for p in speaker.iterdir() if p.is_dir())
    ]
    records: list[Record] = []
    for name, chapter in tqdm(chapters, desc="librispeech", unit="chapter", disable=None):
        records.extend(_read_chapter(chapter, name, strict))
    return records
