"""Reading JSON out of chatty model replies, and the prompts the loop sends."""

from __future__ import annotations

import pytest

from mirdata.annotate.cache import ResponseCache, conversation_hash
from mirdata.annotate.llm import (
    extract_json,
    first_prompt,
    parse_stage_reply,
    revision_prompt,
)
from mirdata.models import Sampling
from mirdata.schema.record import Record, Region


@pytest.mark.parametrize("reply, expected", [
    ('{"summary": "Plain."}', {"summary": "Plain."}),
    ('Sure! Here you go:\n```json\n{"summary": "Fenced."}\n```\nHope this helps!', {"summary": "Fenced."}),
    ('```\n{"summary": "Bare fence."}\n```', {"summary": "Bare fence."}),
    ('The JSON is {"caption": ["a.", "b.",],} as asked.', {"caption": ["a.", "b."]}),
    ("{'summary': 'Python quotes.'}", {"summary": "Python quotes."}),
    ('Note {not json} first, then {"summary": "braces } and { inside a string, and a comma ,}"}',
     {"summary": "braces } and { inside a string, and a comma ,}"}),
    ('{"summary": "It\'s \\"quoted\\" text."}', {"summary": 'It\'s "quoted" text.'}),
    ('Here\'s my answer: {"summary": "Apostrophe before the object."}',
     {"summary": "Apostrophe before the object."}),
])
def test_extract_json_survives_chatty_replies(reply, expected):
    assert extract_json(reply) == expected


@pytest.mark.parametrize("reply, why", [
    ('{"summary": "The reply stops in the mid', "cut off"),
    ("I would compare the two images.", "holds no JSON object"),
    ("[1, 2, 3]", "holds no JSON object"),
])
def test_extract_json_says_why_there_is_none(reply, why):
    with pytest.raises(ValueError, match=why):
        extract_json(reply)


def test_parse_stage_reply_checks_the_shape():
    assert parse_stage_reply('{"caption": [" One. ", "Two."]}', "caption") == (["One.", "Two."], None)
    assert parse_stage_reply('{"caption": "One."}', "caption")[1] == \
        '"caption" must be a JSON list of strings, one per image'
    assert parse_stage_reply('{"answer": "B"}', "conclusion")[1] == \
        "the reply's JSON has no 'conclusion' key (it has 'answer')"
    assert parse_stage_reply('{"summary": 3}', "summary")[1] == "'summary' must be a JSON string"


def test_prompts_carry_the_ground_truth_and_the_failures():
    record = Record(id="x", category="spatial", task="depth_relationship", images=["a.png", "b.png"],
                    question="Which is closer, <image> or <image>?", options=["A. the cube", "B. the ball"],
                    answer="A", regions=[Region("r0", 0, [1, 2, 30, 40], "cube")],
                    meta={"facts": {"depths_m": [2.5, 4.0]}})
    first = first_prompt(record, "conclusion", "The cube is closer, so the answer is A.")
    user = first[1]["content"]
    for part in ("Which is closer", "A. the cube", "B. the ball", "Correct answer: A", '{"depths_m": [2.5, 4.0]}',
                 "r0: image 1, box [1, 2, 30, 40], cube", "The cube is closer, so the answer is A.",
                 "so the answer is A.", '{"conclusion": "..."}'):
        assert part in user
    assert '["caption of image 1", "caption of image 2"]' in first_prompt(record, "caption", ["a.", "b."])[1]["content"]
    second = revision_prompt(first, '{"conclusion": "B"}', "conclusion", ["states B as the answer"], 2)
    assert second[:2] == first and second[2] == {"role": "assistant", "content": '{"conclusion": "B"}'}
    assert "- states B as the answer" in second[3]["content"]
    assert conversation_hash(first) != conversation_hash(second)


def test_cache_key_depends_on_backend_prompt_and_params(tmp_path):
    messages = [{"role": "user", "content": "hi"}]
    key = ResponseCache.key("openai:http://h/v1:m", messages, Sampling())
    assert key == ResponseCache.key("openai:http://h/v1:m", [dict(m) for m in messages], Sampling())
    assert key != ResponseCache.key("openai:http://h/v1:other", messages, Sampling())
    assert key != ResponseCache.key("openai:http://h/v1:m", messages, Sampling(max_new_tokens=8))
    cache = ResponseCache(tmp_path)
    assert cache.get(key) is None
    cache.put(key, "reply ✓")
    assert cache.get(key) == "reply ✓"
    (tmp_path / key[:2] / f"{key}.json").write_text("{garbage")
    assert cache.get(key) is None


def test_long_facts_are_cut_in_the_prompt_and_short_ones_are_whole():
    from mirdata.annotate.llm import FACTS_BUDGET, facts_text

    assert facts_text({"a": [1, 2]}) == '{"a": [1, 2]}'
    long = facts_text({"values": list(range(5000))})
    assert len(long) < FACTS_BUDGET + 80 and long.endswith("characters in all)")
