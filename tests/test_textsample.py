"""Training texts: TTMR tag sampling, MUSER templates, captions, lyric spans, metadata."""

import json
from collections import Counter

import numpy as np

from singalign.textsample import (
    TEMPLATES,
    SongMeta,
    TextSampleConfig,
    caption_of,
    load_metadata,
    lyric_span,
    parse_tags,
    song_id_of,
    songs_singing,
    tag_text,
    tag_vocabulary,
    zero_shot_prompts,
)


def test_song_id_of_segments():
    assert song_id_of("song0007/seg003") == "song0007"
    assert song_id_of("song0007") == "song0007"
    assert song_id_of("a/b/seg12") == "a/b"


def test_parse_tags_list_prefixed_and_dict():
    flat, cats = parse_tags(["Rock", "genre---Jazz", "mood:sad", "rock"])
    assert flat == ("rock", "jazz", "sad") and cats == {"genre": ("jazz",), "mood": ("sad",)}
    flat, cats = parse_tags({"genre": "folk", "instrument": ["piano", "violin"]})
    assert flat == ("folk", "piano", "violin") and cats["instrument"] == ("piano", "violin")


def test_tag_text_samples_one_to_l_tags_of_the_song():
    meta = SongMeta("s", tags=("rock", "piano", "sad", "fast", "female", "live"))
    cfg = TextSampleConfig(max_tags=4, template_prob=0.0, caption_prob=0.0)
    rng = np.random.default_rng(0)
    counts = Counter()
    for _ in range(400):
        parts = tag_text(meta, rng, cfg).split(", ")
        assert set(parts) <= set(meta.tags) and len(set(parts)) == len(parts)
        counts[len(parts)] += 1
    assert sorted(counts) == [1, 2, 3, 4]  # k ~ Uniform{1..L}
    assert all(60 < c < 140 for c in counts.values())


def test_tag_text_templates_and_captions():
    meta = SongMeta("s", tags=("rock",), categories={"genre": ("rock",)}, caption="a loud song")
    rng = np.random.default_rng(1)
    texts = [tag_text(meta, rng, TextSampleConfig(caption_prob=0.5, template_prob=1.0)) for _ in range(300)]
    n_caption = texts.count("a loud song")
    assert 110 < n_caption < 190
    others = [t for t in texts if t != "a loud song"]
    assert all("rock" in t and t != "rock" for t in others)  # always wrapped in a template
    assert "a song of rock" in others  # the category template (MUSER)
    assert tag_text(SongMeta("x"), rng) == ""


def test_lyric_span_is_consecutive_words_within_bounds():
    words = [f"w{i}" for i in range(30)]
    text = " ".join(words)
    rng = np.random.default_rng(0)
    cfg = TextSampleConfig(lyric_min_words=3, lyric_max_words=6)
    for _ in range(100):
        span = lyric_span(text, rng, cfg).split()
        assert 3 <= len(span) <= 6
        i = words.index(span[0])
        assert span == words[i : i + len(span)]
    assert lyric_span("only two", rng, cfg) == "only two"
    assert lyric_span("", rng, cfg) == ""


def test_songs_singing_a_phrase_match_whole_consecutive_words():
    lyrics = {
        "a": "The hand of the enemy\nI will bring the land",
        "b": "and the hand of the Enemy, i will",
        "c": "the hand of them enemy",
        "d": "hand of the enemy i will bring",
    }
    # across a line break, whatever the case and punctuation
    assert songs_singing("hand of the enemy i will", lyrics) == {"a", "b", "d"}
    assert songs_singing("the hand of the enemy", lyrics) == {"a", "b"}
    assert songs_singing("of the", lyrics) == {"a", "b", "d"}
    assert songs_singing("and of", lyrics) == set()  # "land of" is not the word "and"
    assert songs_singing("nd the", lyrics) == set()  # nor "nd" a word of "and"
    assert songs_singing("", lyrics) == set()


def test_prompts_captions_and_vocabulary(tmp_path):
    assert zero_shot_prompts("Jazz") == ["jazz"] + [t.format(tags="jazz") for t in TEMPLATES]
    assert zero_shot_prompts("jazz", TextSampleConfig(prompt_ensemble=False)) == ["jazz"]
    rows = [
        {"id": "a", "split": "train", "tags": ["rock", "sad"], "caption": "", "lyrics": "la la"},
        {
            "id": "b",
            "split": "test",
            "tags": {"genre": ["rock"]},
            "caption": "a rock song",
            "lyrics": ["x", "y"],
        },
    ]
    path = tmp_path / "metadata.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    metas = load_metadata(path)
    assert metas["b"].lyrics == "x\ny" and metas["b"].categories == {"genre": ("rock",)}
    assert caption_of(metas["a"]) == "a song with rock, sad" and caption_of(metas["b"]) == "a rock song"
    assert tag_vocabulary(metas) == ["rock", "sad"]
