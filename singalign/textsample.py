"""Texts for contrastive training: tag text from templates, stochastic tag subsets, captions, lyric spans.

Tag text follows two published recipes:

- **MUSER** (templates): metadata becomes a sentence, e.g. ``"a song of {genre}, with {instruments}"``.
  Tags given by category (``{"genre": [...], "instrument": [...], ...}``) fill category-aware
  templates; plain tag lists fill generic ones (``"a song with {tags}"``).
- **TTMR** (stochastic sampling): each time a song is drawn, ``k`` ~ Uniform{1..min(L, n)} of its
  ``n`` tags are sampled (shuffled) and joined by ", "; with some probability a template wraps
  them, and with another the song's caption is used instead. Zero-shot tagging then asks with one
  tag, which is a case the sampler trains (``k = 1``).

Lyric text is a span of consecutive words of the item's lyrics (a search query is a remembered
phrase, not the whole song).

``metadata.jsonl`` (the synthetic corpus, one song a line): ``{"id", "split", "tags", "caption",
"lyrics"}``; ``tags`` is a list of strings or a dict category -> list. Prepared items are segments
``<song id>/segNNN`` (see ``singalign.data.segments``) or whole songs ``<song id>``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from singalign.jsonconfig import JsonConfig

#: Generic templates for a comma-joined tag list (MUSER / TTMR style).
TEMPLATES: tuple[str, ...] = (
    "a song with {tags}",
    "a song of {tags}",
    "music that is {tags}",
    "a track featuring {tags}",
    "this song is {tags}",
)
#: Category-aware templates: each fills one category's tags (categories absent are left out).
CATEGORY_TEMPLATES: dict[str, str] = {
    "genre": "a song of {tags}",
    "instrument": "with {tags}",
    "mood": "that sounds {tags}",
    "tempo": "at a {tags} tempo",
    "voice": "sung by a {tags} voice",
}
_SEG = re.compile(r"/seg\d+$")


@dataclass(frozen=True)
class TextSampleConfig(JsonConfig):
    """How training texts are drawn.

    Attributes:
        max_tags: L, the most tags in one sampled tag text.
        template_prob: probability that a template wraps the sampled tags.
        caption_prob: probability of using the song's caption instead of tags (when it has one).
        lyric_min_words, lyric_max_words: length range of a sampled lyric span.
        templates: the generic templates (each has ``{tags}``).
        prompt_ensemble: zero-shot prompts per tag are the tag alone plus every template (averaged);
            False uses the tag alone.
    """

    max_tags: int = 5
    template_prob: float = 0.5
    caption_prob: float = 0.3
    lyric_min_words: int = 3
    lyric_max_words: int = 12
    templates: tuple[str, ...] = TEMPLATES
    prompt_ensemble: bool = True


@dataclass(frozen=True)
class SongMeta:
    """One song of ``metadata.jsonl``."""

    id: str
    split: str = ""
    tags: tuple[str, ...] = ()
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    caption: str = ""
    lyrics: str = ""


def song_id_of(item_id: str) -> str:
    """``song0007/seg003`` -> ``song0007`` (a whole-song id is returned unchanged)."""
    return _SEG.sub("", item_id)


def parse_tags(tags: Any) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """Flat tags and categories from a list (``"cat---tag"``/``"cat:tag"`` allowed) or a dict."""
    flat: list[str] = []
    cats: dict[str, list[str]] = {}
    if isinstance(tags, dict):
        for cat, values in tags.items():
            values = [values] if isinstance(values, str) else list(values)
            for v in values:
                flat.append(str(v).strip().lower())
                cats.setdefault(str(cat).lower(), []).append(str(v).strip().lower())
    else:
        for t in tags or ():
            cat, sep, tag = str(t).partition("---")
            if not sep:
                cat, sep, tag = str(t).partition(":")
            if sep and tag:
                cats.setdefault(cat.strip().lower(), []).append(tag.strip().lower())
                flat.append(tag.strip().lower())
            else:
                flat.append(str(t).strip().lower())
    flat = [t for t in dict.fromkeys(flat) if t]
    return tuple(flat), {k: tuple(dict.fromkeys(v)) for k, v in cats.items()}


def load_metadata(paths: list[str | os.PathLike[str]] | str | os.PathLike[str]) -> dict[str, SongMeta]:
    """Read one or more ``metadata.jsonl`` files into ``{song id: SongMeta}``."""
    from singalign.files import read_jsonl

    paths = [paths] if isinstance(paths, str | os.PathLike) else paths
    out: dict[str, SongMeta] = {}
    for p in paths:
        for d in read_jsonl(Path(p)):
            flat, cats = parse_tags(d.get("tags", ()))
            lyrics = d.get("lyrics", "")
            if isinstance(lyrics, list):
                lyrics = "\n".join(str(x.get("text", x)) if isinstance(x, dict) else str(x) for x in lyrics)
            out[str(d["id"])] = SongMeta(
                id=str(d["id"]),
                split=str(d.get("split", "")),
                tags=flat,
                categories=cats,
                caption=str(d.get("caption", "") or ""),
                lyrics=str(lyrics or ""),
            )
    return out


def tag_text(meta: SongMeta, rng: np.random.Generator, cfg: TextSampleConfig = TextSampleConfig()) -> str:
    """One stochastic text for a song's tags (TTMR sampling, MUSER templates), or its caption.

    Returns "" when the song has neither tags nor a caption.
    """
    if meta.caption and (not meta.tags or rng.random() < cfg.caption_prob):
        return meta.caption
    if not meta.tags:
        return ""
    k = int(rng.integers(1, min(cfg.max_tags, len(meta.tags)) + 1))
    chosen = [meta.tags[i] for i in rng.permutation(len(meta.tags))[:k]]
    if rng.random() >= cfg.template_prob:
        return ", ".join(chosen)
    if meta.categories and rng.random() < 0.5:
        parts = []
        for cat, template in CATEGORY_TEMPLATES.items():
            mine = [t for t in chosen if t in meta.categories.get(cat, ())]
            if mine:
                parts.append(template.format(tags=" and ".join(mine)))
        other = [t for t in chosen if not any(t in meta.categories.get(c, ()) for c in CATEGORY_TEMPLATES)]
        if parts:
            return ", ".join(parts + other)
    return cfg.templates[int(rng.integers(len(cfg.templates)))].format(tags=", ".join(chosen))


def lyric_span(text: str, rng: np.random.Generator, cfg: TextSampleConfig = TextSampleConfig()) -> str:
    """A span of ``lyric_min_words..lyric_max_words`` consecutive words of ``text`` ("" if none)."""
    words = text.split()
    if not words:
        return ""
    lo = min(cfg.lyric_min_words, len(words))
    n = int(rng.integers(lo, min(cfg.lyric_max_words, len(words)) + 1))
    start = int(rng.integers(0, len(words) - n + 1))
    return " ".join(words[start : start + n])


def songs_singing(phrase: str, lyrics: dict[str, str]) -> set[str]:
    """The songs whose lyrics contain ``phrase`` as consecutive words (compared as scoring does:
    ``metrics.normalize_for_scoring``, so case, punctuation and line breaks do not matter).

    The relevant songs of a lyrics query: a synthetic corpus draws its lines from a limited pool of
    held-out text, so a 5-word phrase of one song is often sung in another too (154 of 500 queries
    of the library evaluation), and finding that other song first is a right answer.
    """
    from singalign.metrics import normalize_for_scoring

    want = f" {normalize_for_scoring(phrase)} "
    if not want.strip():
        return set()
    return {s for s, text in lyrics.items() if want in f" {normalize_for_scoring(text)} "}


def zero_shot_prompts(tag: str, cfg: TextSampleConfig = TextSampleConfig()) -> list[str]:
    """Texts whose averaged embedding stands for ``tag`` in zero-shot tagging."""
    tag = tag.strip().lower()
    if not cfg.prompt_ensemble:
        return [tag]
    return [tag] + [t.format(tags=tag) for t in cfg.templates]


def caption_of(meta: SongMeta) -> str:
    """The song's caption, or (none given) its tags in a fixed template: the retrieval query."""
    if meta.caption:
        return meta.caption
    return TEMPLATES[0].format(tags=", ".join(meta.tags)) if meta.tags else ""


def tag_vocabulary(metas: list[SongMeta] | dict[str, SongMeta], min_count: int = 1) -> list[str]:
    """Tags used by at least ``min_count`` songs, most frequent first (ties alphabetical)."""
    from collections import Counter

    metas = list(metas.values()) if isinstance(metas, dict) else metas
    counts = Counter(t for m in metas for t in m.tags)
    return sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
