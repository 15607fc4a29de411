"""`mirdata release`: a MIR folder becomes a Hugging Face dataset folder that `datasets` loads offline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import huggingface_hub
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import write_simple_dataset
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.registry import CATEGORIES, category_of, task_names
from mirdata.release import release_dataset
from mirdata.release.card import size_category
from mirdata.release.layout import ORIGINAL, ORIGINAL_JSON, STATS_FIGURE, decode_row
from mirdata.schema.record import Record
from mirdata.store import MIRStore

PER_TASK = 3


def rate(root: Path, rule=lambda i, r: "hard" if i % 3 == 0 else "easy") -> list[dict]:
    """Give every record a difficulty (and a pass rate that agrees with it), as `mirdata difficulty` would."""
    store = MIRStore(root)
    raw = store.read_raw()
    for i, r in enumerate(raw):
        r["difficulty"] = rule(i, r)
        r["pass_rate"] = 0.2 if r["difficulty"] == "hard" else 0.9
    store.write(raw)
    return raw


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1 for datasets and huggingface_hub (both read it once, at import)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict]]:
    base = tmp_path_factory.mktemp("release")
    root = base / "mir"
    write_simple_dataset(root, per_task=PER_TASK)
    raw = rate(root)
    MIRStore(root).update_build_info(difficulty={  # what `mirdata difficulty` leaves in build.json
        "backend": "transformers", "model": "expert-vlm", "samples": 10, "temperature": 0.7, "top_p": 0.8,
        "rule": "threshold", "threshold": 0.5, "counts": {"view_3d": {"easy": 2, "hard": 1}}, "seconds": 1.5})
    repo = base / "repo"
    release_dataset(root, repo, repo_id="someone/mir-test", show_progress=False)
    return root, repo, raw


def load(repo: Path, *args, **kwargs):
    return datasets.load_dataset(str(repo), *args, cache_dir=str(repo.parent / "hf-cache"), **kwargs)


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_default_config_loads_offline_with_pil_images(released):
    root, repo, raw = released
    ds = load(repo)
    assert set(ds) == {"easy", "hard"}
    for split in ("easy", "hard"):  # every record, in the order of the source
        assert list(ds[split]["id"]) == [r["id"] for r in raw if r["difficulty"] == split]
    row = ds["easy"][0]
    assert all(isinstance(im, Image.Image) and im.size == (96, 64) for im in row["images"])
    assert row["question"].count("<image>") == len(row["images"])
    meta = json.loads(row["meta"])  # JSON text, so that datasets 4.0 reads the release
    assert meta == next(r["meta"] for r in raw if r["id"] == row["id"]) and "sides" in meta["facts"]


def test_category_and_task_configs_hold_only_their_records(released):
    root, repo, raw = released
    hard_spatial = load(repo, "spatial", split="hard")
    expected = {r["id"] for r in raw if r["category"] == "spatial" and r["difficulty"] == "hard"}
    assert expected and set(list(hard_spatial["id"])) == expected
    assert isinstance(hard_spatial[0]["images"][0], Image.Image)
    view_3d = load(repo, "view_3d")
    assert sorted([*view_3d["easy"]["id"], *view_3d["hard"]["id"]]) == sorted(r["id"] for r in raw
                                                                          if r["task"] == "view_3d")


def test_release_then_load_gives_back_the_source_records_and_image_bytes(released):
    root, repo, raw = released
    ds = load(repo).cast_column("images", datasets.List(datasets.Image(decode=False)))
    loaded = {row["id"]: row for split in ds.values() for row in split}
    assert len(loaded) == len(raw)
    for source in raw:
        row = dict(loaded[source["id"]])
        images = row.pop("images")
        assert [im["path"] for im in images] == source["images"]
        assert [im["bytes"] for im in images] == [(root / p).read_bytes() for p in source["images"]]
        row["images"] = source["images"]
        assert Record.from_dict(decode_row(row)).to_dict() == Record.from_dict(source).to_dict()


def test_card_yaml_names_every_config_and_split_and_its_files_exist(released):
    root, repo, raw = released
    meta = front_matter(repo / "README.md")
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"all", *CATEGORIES, *task_names()}
    assert configs["all"].get("default") is True and sum(bool(c.get("default")) for c in configs.values()) == 1
    for name, config in configs.items():
        splits = {f["split"]: f["path"] for f in config["data_files"]}
        assert set(splits) == {"easy", "hard"}, name
        for split, patterns in splits.items():
            patterns = [patterns] if isinstance(patterns, str) else patterns
            files = [f for pattern in patterns for f in sorted(repo.glob(pattern))]
            assert len(files) == len(patterns), (name, split, patterns)  # each names one task's shard
            ids = [i for f in files for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]
            wanted = [r for r in raw if r["difficulty"] == split and name in ("all", r["category"], r["task"])]
            assert sorted(ids) == sorted(r["id"] for r in wanted), (name, split)
    assert meta["license"] == "cc-by-4.0"
    assert meta["language"] == ["en"]
    assert meta["size_categories"] == ["n<1K"]
    assert "visual-question-answering" in meta["task_categories"]
    # what the Hub's own parser makes of it
    card = huggingface_hub.DatasetCard.load(repo / "README.md")
    assert {c["config_name"] for c in card.data.configs} == set(configs)


def test_card_body_counts_figure_fields_and_citation(released):
    root, repo, raw = released
    body = (repo / "README.md").read_text().split("---\n", 2)[2]
    hard_view = sum(r["task"] == "view_3d" and r["difficulty"] == "hard" for r in raw)
    easy_view = PER_TASK - hard_view
    assert f"| `view_3d` | {easy_view} | {hard_view} | {PER_TASK} |" in body
    n_easy = sum(r["difficulty"] == "easy" for r in raw)
    assert f"| **all** | {n_easy} | {len(raw) - n_easy} | {len(raw)} |" in body
    assert f"]({STATS_FIGURE})" in body
    assert "Every record is rated: the release refuses a folder with unrated records" in body
    assert "The answers are ground truth by construction" in body and "original release (imported" not in body
    with Image.open(repo / STATS_FIGURE) as figure:
        assert figure.format == "PNG" and figure.size[0] > 100
    for field in ("text2region", "region2region", "pass_rate", "regions"):
        assert f"| `{field}` |" in body
    assert 'load_dataset("someone/mir-test", "spatial", split="hard")' in body
    assert "arXiv:2509.17040" in body and "@article{" in body
    assert ("`expert-vlm` answered 10 times per question; a question is easy when its pass rate is at least 0.5"
            in body)
    assert "| `temperature` | `0.7` |" in body and "| `seconds` |" not in body and "| `counts` |" not in body
    assert "| hard | 12 | 0.20 | 0.20 | 0.20 |" in body


def test_parquet_files_have_feature_metadata_and_small_row_groups(tmp_path):
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=5)
    rate(root, lambda i, r: "easy")
    repo = tmp_path / "repo"
    release_dataset(root, repo, row_group_rows=2, original=False, show_progress=False)
    shard = pq.ParquetFile(repo / "data" / "spatial" / "view_3d" / "easy-00000-of-00001.parquet")
    assert shard.metadata.num_rows == 5
    assert [shard.metadata.row_group(i).num_rows for i in range(shard.metadata.num_row_groups)] == [2, 2, 1]
    features = datasets.Features.from_arrow_schema(shard.schema_arrow)
    assert features["images"] == datasets.List(datasets.Image())
    # every task's config has only the split it has records for
    configs = {c["config_name"]: c for c in front_matter(repo / "README.md")["configs"]}
    assert all([f["split"] for f in c["data_files"]] == ["easy"] for c in configs.values())
    assert not (repo / ORIGINAL).exists()
    assert list(load(repo)) == ["easy"]


def test_large_groups_are_cut_into_shards_that_all_load(tmp_path):
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=4)
    raw = rate(root, lambda i, r: "easy")
    repo = tmp_path / "repo"
    one_record = sum((root / p).stat().st_size for p in raw[0]["images"])
    release_dataset(root, repo, max_shard_bytes=one_record * 2, original=False, show_progress=False)
    shards = sorted(p.name for p in (repo / "data" / "sequential" / "speed_comparison").iterdir())
    assert len(shards) >= 2 and all(s.endswith(f"-of-{len(shards):05d}.parquet") for s in shards)
    assert sorted(load(repo, split="easy")["id"]) == sorted(r["id"] for r in raw)


def test_original_release_files_name_images_that_are_there(released):
    root, repo, raw = released
    data = json.loads((repo / ORIGINAL / ORIGINAL_JSON).read_text())
    assert len(data) == len(raw)
    for r, item in zip(raw, data, strict=True):
        bucket = hashlib.sha256(r["id"].encode()).hexdigest()[:2]
        for ours, theirs in zip(r["images"], item["images"], strict=True):
            assert theirs == f"images/{r['task']}/{bucket}/{Path(ours).name}"
            assert (repo / ORIGINAL / theirs).read_bytes() == (root / ours).read_bytes()
    # the layout stays within the Hub's advice of 10,000 entries per folder: a record's images share one bucket,
    # and one task holds at most 256 buckets
    for folder in [repo / ORIGINAL, *(repo / ORIGINAL).rglob("*")]:
        if folder.is_dir():
            assert len(list(folder.iterdir())) <= 256
    assert {p.parent.parent.name for p in (repo / ORIGINAL / "images").rglob("*.png")} == set(task_names())


def test_hub_size_categories():
    hub_values = ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B"]
    assert [size_category(n) for n in (999, 1_000, 10_000, 99_999, 100_000, 9_999_999, 10_000_000,
                                       100_000_000)] == [hub_values[k] for k in (0, 1, 2, 2, 3, 4, 5, 6)]


# The feature types datasets 4.0.0 knows (datasets.features.features._FEATURE_TYPES of that version);
# LLaMA-Factory pins datasets<=4.0.0, and a release with any other type fails there with
# "Feature type 'Json' not found".
DATASETS_4_0_TYPES = {"Array2D", "Array3D", "Array4D", "Array5D", "Audio", "ClassLabel", "Image", "LargeList", "List",
                      "Pdf", "Translation", "TranslationVariableLanguages", "Value", "Video"}


def test_every_stored_feature_type_is_known_to_datasets_4_0(released):
    root, repo, raw = released

    def types(feature) -> set[str]:
        if isinstance(feature, dict):
            own = {feature["_type"]} if isinstance(feature.get("_type"), str) else set()
            return own | {t for k, v in feature.items() if k != "_type" for t in types(v)}
        if isinstance(feature, list):
            return {t for v in feature for t in types(v)}
        return set()

    shards = sorted(repo.rglob("*.parquet"))
    assert shards
    for shard in shards:
        stored = json.loads(pq.read_schema(shard).metadata[b"huggingface"])["info"]["features"]
        assert types(stored) <= DATASETS_4_0_TYPES, shard
        assert stored["meta"] == {"dtype": "string", "_type": "Value"}


def test_records_imported_from_the_original_release_keep_its_file_names(tmp_path):
    from mirdata.upstream import import_upstream

    examples = Path(__file__).resolve().parent.parent / "examples"
    root = tmp_path / "imported"
    import_upstream(examples / "all_data_rel.json", examples / "images.zip", root, show_progress=False)
    raw = rate(root)
    repo = tmp_path / "repo"
    release_dataset(root, repo, show_progress=False)
    items = json.loads((repo / ORIGINAL / ORIGINAL_JSON).read_text())
    for record, item, upstream in zip(raw, items, json.loads((examples / "all_data_rel.json").read_text()),
                                      strict=True):
        bucket = hashlib.sha256(record["id"].encode()).hexdigest()[:2]
        for ours, theirs, original in zip(record["images"], item["images"], upstream["images"], strict=True):
            # the original file names, in a bucket of the task's folder
            assert theirs == original.replace("images/", f"images/{record['task']}/{bucket}/", 1)
            assert (repo / ORIGINAL / theirs).read_bytes() == (root / ours).read_bytes()
    body = (repo / "README.md").read_text()
    assert f"{len(raw)} questions come from the original release (imported with `mirdata import-upstream`" in body


def test_unrated_records_are_refused_and_nothing_is_written(tmp_path):
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=1)
    rate(root, lambda i, r: None if i in (2, 5) else "easy")
    repo = tmp_path / "repo"
    with pytest.raises(MirdataError, match=r"records\.jsonl: 2 of 12 records have no difficulty.*mirdata difficulty"):
        release_dataset(root, repo, show_progress=False)
    assert not repo.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["mir"]  # no staging folder left behind


def test_bad_images_are_named(tmp_path):
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=1)
    raw = rate(root)
    (root / raw[3]["images"][1]).write_text("not a picture")
    # the same file checks as `mirdata validate`
    with pytest.raises(MirdataError, match=rf"1 failure, e.g. line 4 {raw[3]['id']} images\[1\]: "
                                           rf"{raw[3]['images'][1]}: does not decode as an image"):
        release_dataset(root, tmp_path / "repo", show_progress=False)
    (root / raw[3]["images"][1]).unlink()
    with pytest.raises(MirdataError, match=rf"{raw[3]['images'][1]}: file does not exist"):
        release_dataset(root, tmp_path / "repo", show_progress=False)
    assert not (tmp_path / "repo").exists()


def test_existing_release_is_kept_unless_overwrite_and_then_fully_replaced(tmp_path):
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=1)
    rate(root, lambda i, r: "easy")
    repo = tmp_path / "repo"
    release_dataset(root, repo, original=False, show_progress=False)
    stale = repo / "data" / "spatial" / "view_3d" / "hard-00000-of-00001.parquet"
    stale.write_bytes(b"left over from an older release")
    with pytest.raises(MirdataError, match="not empty.*--overwrite"):
        release_dataset(root, repo, show_progress=False)
    assert stale.exists()
    release_dataset(root, repo, overwrite=True, original=False, show_progress=False)
    assert not stale.exists()
    assert list(load(repo)) == ["easy"]
    with pytest.raises(MirdataError, match="must not be or contain the dataset folder"):
        release_dataset(root, tmp_path, overwrite=True, show_progress=False)


def test_cli_release_and_its_one_line_error(tmp_path):
    root = tmp_path / "mir"
    records = write_simple_dataset(root, per_task=1)
    runner = CliRunner()
    result = runner.invoke(app, ["release", str(root), "--out", str(tmp_path / "repo")])
    assert result.exit_code == 1
    assert "error:" in result.output and "have no difficulty" in result.output
    assert "Traceback" not in result.output
    rate(root)
    result = runner.invoke(app, ["release", str(root), "--out", str(tmp_path / "repo"), "--no-original",
                                 "--max-shard-size", "200MB"])
    assert result.exit_code == 0, result.output
    assert f"released {len(records)} records" in result.output
    assert {category_of(t) for t in task_names()} == {p.name for p in (tmp_path / "repo" / "data").iterdir()}


def test_working_folders_are_never_released(tmp_path):
    """DIR/.cache/ (annotation and difficulty caches) and DIR/.parts/ (an unfinished build) stay home."""
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=1)
    raw = rate(root)
    secret = Image.new("RGB", (7, 5), (1, 2, 3))
    (root / ".cache" / "difficulty" / "0123").mkdir(parents=True)
    (root / ".cache" / "difficulty" / "0123" / f"{raw[0]['id']}.json").write_text('{"responses": ["A"]}')
    secret.save(root / ".cache" / "stray.png")
    (root / ".parts").mkdir()  # an empty one is what a finished build may leave
    release_dataset(root, tmp_path / "repo", show_progress=False)
    released = [p.relative_to(tmp_path / "repo") for p in (tmp_path / "repo").rglob("*")]
    assert released and not [p for p in released if set(p.parts) & {".cache", ".parts"}]
    secret_bytes = (root / ".cache" / "stray.png").read_bytes()
    assert all(secret_bytes not in p.read_bytes() for p in (tmp_path / "repo").rglob("*") if p.is_file())
    embedded = {im["path"] for parquet in (tmp_path / "repo" / "data").rglob("*.parquet")
                for row in pq.read_table(parquet).column("images").to_pylist() for im in row}
    assert embedded == {p for r in raw for p in r["images"]}

    # records waiting in .parts/ are not in records.jsonl yet: releasing would silently leave them out
    (root / ".parts" / "view_3d-extra.json").write_text(json.dumps(raw[0]))
    with pytest.raises(MirdataError, match=r"\.parts: 1 records of an unfinished build .*same `mirdata build`"):
        release_dataset(root, tmp_path / "repo2", show_progress=False)
    (root / ".parts" / "view_3d-extra.json").unlink()

    # a record may not take its image from a working folder
    raw[1]["images"][0] = ".cache/stray.png"
    MIRStore(root).write(raw)
    with pytest.raises(MirdataError, match=rf"record {raw[1]['id']} names the image \.cache/stray\.png.*never "
                                           "released"):
        release_dataset(root, tmp_path / "repo2", show_progress=False)
    assert not (tmp_path / "repo2").exists()


def test_card_names_a_local_expert_model_by_its_folder_and_says_how_it_answered(tmp_path):
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=1)
    rate(root)
    MIRStore(root).update_build_info(difficulty={"backend": "transformers", "samples": 10, "rule": "adaptive",
                                                 "quantile": 0.5, "model": "/home/someone/models/Qwen2.5-VL-7B"})
    release_dataset(root, tmp_path / "repo", original=False, show_progress=False)
    card = (tmp_path / "repo" / "README.md").read_text()
    assert "Here: `Qwen2.5-VL-7B` answered 10 times" in card and "| `model` | `Qwen2.5-VL-7B` |" in card
    assert "/home/someone" not in card
    assert "several times (sampled, not greedy)" in card

    MIRStore(root).update_build_info(difficulty={"samples": 10, "temperature": 0, "model": "expert"})
    release_dataset(root, tmp_path / "repo", overwrite=True, original=False, show_progress=False)
    card = (tmp_path / "repo" / "README.md").read_text()
    assert "answered each question once, greedily" in card and "answered greedily (temperature 0)" in card
