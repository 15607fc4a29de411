"""The curriculum's stage formats and data order (no model needed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mirdata.curriculum.stages import (build_curriculum, check_example, examples_sha256, input_steps, load_records,
                                       stage_example, target_steps)
from mirdata.curriculum.train import parse_stages
from mirdata.errors import MirdataError
from mirdata.schema.chain import parse_chain
from mirdata.schema.checks import stated_letters
from mirdata.schema.record import IMAGE_TOKEN, Record
from mirdata.store import MIRStore
from tests.conftest import write_simple_dataset

CHAIN = ("summary", "caption", "text2region", "region2region", "conclusion")


def rate(records: list[Record], hard_every: int = 2) -> list[Record]:
    """Every `hard_every`-th record hard, the others easy."""
    return [replace(r, difficulty="hard" if i % hard_every == 0 else "easy") for i, r in enumerate(records)]


@pytest.fixture
def records(tmp_path: Path) -> list[Record]:
    return rate(write_simple_dataset(tmp_path / "d", per_task=2))


def step_texts(record: Record, step: str) -> list[str]:
    return list(record.caption) if step == "caption" else [getattr(record, step)]


def test_stage_table_moves_steps_from_input_to_target_last_step_first():
    assert target_steps(0) == CHAIN and input_steps(0) == ()
    assert target_steps(1) == ("conclusion",)
    assert input_steps(1) == ("summary", "caption", "text2region", "region2region")
    assert target_steps(2) == ("region2region", "conclusion")
    assert target_steps(3) == ("text2region", "region2region", "conclusion")
    assert target_steps(4) == ("caption", "text2region", "region2region", "conclusion")
    assert target_steps(5) == CHAIN and input_steps(5) == ()
    for stage in range(6):
        assert set(input_steps(stage)) | set(target_steps(stage)) == set(CHAIN)
    with pytest.raises(MirdataError, match="stage 6"):
        target_steps(6)


@pytest.mark.parametrize("stage", range(6))
def test_no_stage_input_holds_anything_its_target_holds(records, stage):
    for record in records:
        ex = stage_example(record, stage)
        for step in target_steps(stage):
            assert f"<{step}>" not in ex.prompt
            for text in step_texts(record, step):
                assert text not in ex.prompt, (stage, step)
        for step in input_steps(stage):
            assert f"<{step}>" not in ex.completion
            for text in step_texts(record, step):
                assert text in ex.prompt and text not in ex.completion, (stage, step)
        # the question, its images and options are always in the input, never in the target
        assert ex.prompt.startswith(record.question) and ex.prompt.count(IMAGE_TOKEN) == len(record.images)
        assert all(option in ex.prompt and option not in ex.completion for option in record.options)


@pytest.mark.parametrize("stage", range(6))
def test_target_splits_back_into_its_steps_and_states_the_answer(records, stage):
    record = records[0]
    chain = parse_chain(stage_example(record, stage).completion)
    assert list(chain) == list(target_steps(stage))
    assert chain["conclusion"] == record.conclusion
    assert stated_letters(chain["conclusion"]) == {record.answer}
    if "caption" in chain:
        assert chain["caption"].splitlines() == [f"Image {k + 1}: {c}" for k, c in enumerate(record.caption)]


def test_easy_level_and_seeded_hard_sample(records):
    cur = build_curriculum(records, hard_fraction=0.4, seed=3)
    hard_ids = {r.id for r in records if r.difficulty == "hard"}
    assert {r.id for r in cur.easy} == {r.id for r in records if r.difficulty == "easy"}
    assert len(cur.hard) == round(0.4 * len(hard_ids)) and {r.id for r in cur.hard} <= hard_ids
    assert cur.hard_total == len(hard_ids)
    assert [r.id for r in cur.records(0)] == [r.id for r in cur.easy]
    for stage in range(1, 6):  # every hard stage trains on the same sample in the same order
        assert [ex.id for ex in cur.examples(stage)] == [r.id for r in cur.hard]


def test_order_depends_on_seed_only_not_on_file_order(records):
    a = build_curriculum(records, 0.5, seed=1)
    b = build_curriculum(list(reversed(records)), 0.5, seed=1)
    c = build_curriculum(records, 0.5, seed=2)
    assert [r.id for r in a.easy] == [r.id for r in b.easy] and [r.id for r in a.hard] == [r.id for r in b.hard]
    assert [r.id for r in a.easy] != [r.id for r in c.easy]
    # shuffled within the level: not simply sorted
    assert [r.id for r in a.easy] != sorted(r.id for r in a.easy)


def test_adding_hard_records_leaves_the_easy_order_alone(records):
    extra = [replace(r, id=r.id + "-x", difficulty="hard") for r in records[:4]]
    a = build_curriculum(records, 0.5, seed=0)
    b = build_curriculum(records + extra, 0.5, seed=0)
    assert [r.id for r in a.easy] == [r.id for r in b.easy]


def test_unrated_records_are_refused_with_the_fix(records):
    with pytest.raises(MirdataError, match="mirdata difficulty"):
        build_curriculum([replace(r, difficulty=None) for r in records], source="DIR")
    partly = [replace(records[0], difficulty=None), *records[1:]]
    with pytest.raises(MirdataError, match=rf"1 of {len(records)} records have no difficulty.*{records[0].id}"):
        build_curriculum(partly)
    with pytest.raises(MirdataError, match="hard-fraction"):
        build_curriculum(records, hard_fraction=0.0)
    with pytest.raises(MirdataError, match="appears twice"):
        build_curriculum(records + records[:1])


def test_fingerprint_follows_content_and_order(records):
    examples = build_curriculum(records, 0.5).examples(2)
    assert examples_sha256(examples) == examples_sha256(list(examples))
    assert examples_sha256(examples) != examples_sha256(examples[::-1])
    changed = [replace(examples[0], completion=examples[0].completion + " "), *examples[1:]]
    assert examples_sha256(examples) != examples_sha256(changed)


def test_preflight_checks_placeholders_and_files(tmp_path, records):
    root = tmp_path / "d"
    ex = stage_example(records[0], 1)
    check_example(ex, root)
    with pytest.raises(MirdataError, match=rf"{records[0].id}.*1 <image> placeholders for 2 images"):
        check_example(replace(ex, prompt=ex.prompt.replace(IMAGE_TOKEN, "", 1)), root)
    (root / ex.images[1]).unlink()
    with pytest.raises(MirdataError, match="does not exist"):
        check_example(ex, root)


def test_load_records_from_a_mir_folder_and_a_release(tmp_path):
    from mirdata.release import release_dataset

    src = tmp_path / "d"
    write_simple_dataset(src, per_task=1)
    store = MIRStore(src)
    store.write(rate(store.read()))
    release_dataset(src, tmp_path / "release", original=False)

    root, mir = load_records(src, tmp_path / "unused")
    assert root == src and not (tmp_path / "unused").exists()
    cache = tmp_path / "cache"
    release_root, released = load_records(tmp_path / "release", cache)
    assert release_root == cache
    by_id = {r.id: r for r in mir}
    assert sorted(by_id) == sorted(r.id for r in released)
    for r in released:  # same texts, same image bytes, extracted once under the cache
        assert (r.question, r.conclusion, r.difficulty) == (by_id[r.id].question, by_id[r.id].conclusion,
                                                            by_id[r.id].difficulty)
        for rel, orig in zip(r.images, by_id[r.id].images, strict=True):
            assert (cache / rel).read_bytes() == (src / orig).read_bytes()
    a, b = build_curriculum(mir, 0.5), build_curriculum(released, 0.5)
    assert [r.id for r in a.hard] == [r.id for r in b.hard]
    assert [e.completion for e in a.examples(0)] == [e.completion for e in b.examples(0)]

    with pytest.raises(MirdataError, match="neither a MIR folder"):
        load_records(cache, tmp_path / "other")


def test_parse_stages():
    assert parse_stages("0-5") == [0, 1, 2, 3, 4, 5]
    assert parse_stages("3,0-1, 5") == [0, 1, 3, 5]
    assert parse_stages("2") == [2]
    for bad in ("0-6", "3-1", "a", "1-", ""):
        with pytest.raises(MirdataError, match="--stages"):
            parse_stages(bad)
