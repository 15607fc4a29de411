"""The staged curriculum's data: which records each stage trains on, in which order, and in which format.

Stage 0 trains on the easy questions with the whole reasoning chain as its target. Stages 1-5 train on one seeded
sample of the hard questions and move the reasoning steps from the model's input to its target, last step first:

| stage | records     | input (besides question and options)         | target                                          |
| ----- | ----------- | -------------------------------------------- | ----------------------------------------------- |
| 0     | easy        | -                                            | the whole chain                                 |
| 1     | hard sample | summary, caption, text2region, region2region | conclusion                                      |
| 2     | hard sample | summary, caption, text2region                | region2region, conclusion                       |
| 3     | hard sample | summary, caption                             | text2region, region2region, conclusion          |
| 4     | hard sample | summary                                      | caption, text2region, region2region, conclusion |
| 5     | hard sample | -                                            | the whole chain                                 |

Input and target are written in the reasoning-chain format of `mirdata.schema.chain`: every step in its tag, in the
input as in the target, and the steps of the target asked for in words, so a stage's input never holds one of them.

Order: records are sorted by id, then shuffled within their level with a seed derived from (level, seed), so the
order does not depend on the order of the input file, and adding hard records does not reorder the easy ones.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mirdata.errors import MirdataError
from mirdata.schema.chain import CHAIN, chain_prompt, tagged
from mirdata.schema.record import IMAGE_TOKEN, Record

if TYPE_CHECKING:
    from mirdata.release.source import Source

STAGE_IDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
DEFAULT_HARD_FRACTION = 0.4
DEFAULT_SEED = 0


def target_steps(stage: int) -> tuple[str, ...]:
    """The reasoning steps a stage trains the model to write, in chain order."""
    _check_stage(stage)
    return CHAIN if stage == 0 else CHAIN[len(CHAIN) - stage:]


def input_steps(stage: int) -> tuple[str, ...]:
    """The reasoning steps a stage gives the model in its input, in chain order."""
    target = target_steps(stage)
    return tuple(step for step in CHAIN if step not in target)


def stage_level(stage: int) -> str:
    _check_stage(stage)
    return "easy" if stage == 0 else "hard"


def _check_stage(stage: int) -> None:
    if stage not in STAGE_IDS:
        raise MirdataError(f"stage {stage} does not exist: stages are 0-5")


@dataclass(frozen=True)
class StageExample:
    """One training sample: a user turn (`prompt`, with one `<image>` per image in place) and the assistant's
    turn (`completion`). `images` are paths relative to the dataset folder the records came from."""

    id: str
    stage: int
    images: tuple[str, ...]
    prompt: str
    completion: str

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["images"] = list(self.images)
        return d


def stage_example(record: Record, stage: int) -> StageExample:
    given, target = input_steps(stage), target_steps(stage)
    return StageExample(id=record.id, stage=stage, images=tuple(record.images),
                        prompt=chain_prompt(record, given, target), completion=tagged(record, target))


# -- which records, in which order ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Curriculum:
    """The easy records (stage 0) and the sampled hard records (stages 1-5), each list in training order."""

    easy: list[Record]
    hard: list[Record]
    hard_total: int

    def records(self, stage: int) -> list[Record]:
        return self.easy if stage_level(stage) == "easy" else self.hard

    def examples(self, stage: int) -> list[StageExample]:
        return [stage_example(r, stage) for r in self.records(stage)]


def build_curriculum(records: Sequence[Record], hard_fraction: float = DEFAULT_HARD_FRACTION,
                     seed: int = DEFAULT_SEED, source: str = "the dataset") -> Curriculum:
    """Split rated records into the easy level and a seeded sample of `hard_fraction` of the hard level."""
    if not 0.0 < hard_fraction <= 1.0:
        raise MirdataError(f"--hard-fraction must be in (0, 1], got {hard_fraction}")
    unrated = [r for r in records if r.difficulty not in ("easy", "hard")]
    if len(unrated) == len(records):
        raise MirdataError(f"{source}: no record has a difficulty; rate them first with `mirdata difficulty`")
    if unrated:
        raise MirdataError(f"{source}: {len(unrated)} of {len(records)} records have no difficulty (first: "
                           f"{unrated[0].id!r}); finish rating them with `mirdata difficulty`")
    _check_unique_ids(records, source)
    easy = sorted((r for r in records if r.difficulty == "easy"), key=lambda r: r.id)
    hard = sorted((r for r in records if r.difficulty == "hard"), key=lambda r: r.id)
    random.Random(f"easy-{seed}").shuffle(easy)
    n_sampled = max(1, round(hard_fraction * len(hard))) if hard else 0
    sampled = random.Random(f"hard-{seed}").sample(hard, n_sampled)
    return Curriculum(easy=easy, hard=sampled, hard_total=len(hard))


def _check_unique_ids(records: Sequence[Record], source: str) -> None:
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise MirdataError(f"{source}: record id {r.id!r} appears twice; run `mirdata validate`")
        seen.add(r.id)


def examples_sha256(examples: Sequence[StageExample]) -> str:
    """Fingerprint of a stage's data in order: sha256 over one canonical JSON line per example
    (id, stage, images, prompt, completion). Same data in the same order → same digest."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps(ex.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def check_example(example: StageExample, root: Path) -> None:
    """The pre-flight checks that need no model: one `<image>` per image, and every image file present."""
    n_tokens = example.prompt.count(IMAGE_TOKEN)
    if n_tokens != len(example.images):
        raise MirdataError(f"record {example.id!r}: the prompt of stage {example.stage} holds {n_tokens} "
                           f"{IMAGE_TOKEN} placeholders for {len(example.images)} images")
    from mirdata.store import MIRStore

    for rel in example.images:
        path = MIRStore(root).image_path(rel)
        if not path.is_file():
            raise MirdataError(f"record {example.id!r}: image {path} does not exist")


# -- reading a MIR folder or a released dataset -------------------------------------------------------------

def load_records(data: str | Path, image_cache: Path) -> tuple[Path, list[Record]]:
    """The records of a MIR folder (records.jsonl) or of a released dataset folder (parquet + card, as written by
    `mirdata release`), and the folder their image paths are relative to. A release's embedded images are written
    once to `image_cache`, named by their content hash."""
    from mirdata.release.source import open_source

    source = open_source(data)
    if not source.is_release:
        from mirdata.store import MIRStore

        return source.path, MIRStore(source.path).read()
    return image_cache, _release_records(source, image_cache)


def _release_records(source: Source, image_cache: Path) -> list[Record]:
    from mirdata.store import atomic_write

    records = []
    for row in source.rows():
        rel_paths = []
        for data_bytes, name in zip(row.pop("image_bytes"), row["images"], strict=True):
            rel = f"images/{hashlib.sha256(data_bytes).hexdigest()[:24]}{Path(name).suffix or '.png'}"
            if not (image_cache / rel).is_file():
                atomic_write(image_cache / rel, data_bytes)
            rel_paths.append(rel)
        records.append(Record.from_dict({**row, "images": rel_paths}))
    return records
