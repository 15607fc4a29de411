"""The audit's checks beside the blind guessers: answer letters, option texts, duplicates and images.

Each check is a test with a stated null hypothesis where chance could produce what it sees (letter counts,
options never right), so that a few records never fail by bad luck, and a plain count where chance cannot
(byte-identical files, repeated records).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mirdata.audit.guessers import answer_credit, permutation_p, tied_best
from mirdata.audit.texts import TaskTexts, normalise
from mirdata.errors import MirdataError
from mirdata.schema.record import LETTERS

BALANCE_DRAWS = 10_000
SHOWN_TEXTS = 10


def letter_balance(answers: np.ndarray, n_options: np.ndarray, *, alpha: float, min_gap: float,
                   seed: int) -> dict[str, dict[str, Any]]:
    """Per option count k: the letter counts, the largest share over the fair share 1/k, the chi-square
    statistic against uniform letters and its p-value from multinomial draws (exact at any n, unlike the
    chi-square table at small counts). Fails when p < alpha and the largest share exceeds 1/k by more than
    `min_gap` points."""
    rng = np.random.default_rng([seed, 1])
    out = {}
    for k in np.unique(n_options):
        counts = np.bincount(answers[n_options == k], minlength=k)
        n = int(counts.sum())
        expected = n / k
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        draws = rng.multinomial(n, np.full(k, 1 / k), size=BALANCE_DRAWS)
        null = ((draws - expected) ** 2 / expected).sum(axis=1)
        p = float((1 + np.count_nonzero(null >= chi2 - 1e-9)) / (1 + BALANCE_DRAWS))
        top = counts.max() / n
        out[str(int(k))] = {"n": n, "counts": {LETTERS[j]: int(c) for j, c in enumerate(counts)},
                            "max_over_fair": round(float(top * k), 4), "chi2": round(chi2, 4), "p_value": p,
                            "passed": not (p < alpha and 100 * (top - 1 / k) > min_gap)}
    return out


def index_credit(index: np.ndarray, n_options: np.ndarray, others: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 valid: np.ndarray) -> tuple[np.ndarray, int]:
    """Credit matrix of guessing a record's letter from the other tasks' records with the same index and the
    same number of options (their commonest letter; no such record: every option tied). Returns it and how many
    records had one to go by."""
    votes: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
    for idx, k, letters in others:
        for key, letter in zip(zip(idx.tolist(), k.tolist()), letters.tolist()):
            votes[key][letter] += 1
    scores = np.zeros(valid.shape)
    compared = 0
    for i, key in enumerate(zip(index.tolist(), n_options.tolist())):
        if key in votes:
            compared += 1
            for letter, count in votes[key].items():
                scores[i, letter] = count
    return tied_best(scores[None], valid)[0], compared


def letter_from_index(credit: np.ndarray, compared: int, runs: np.ndarray, chance: float, *, alpha: float,
                      min_gap: float) -> dict[str, Any]:
    """Accuracy of the index guess against chance, with the permutation p-value over the same answer runs."""
    per_run = answer_credit(credit, runs).mean(axis=1)
    accuracy, p = float(per_run[0]), permutation_p(per_run)
    return {"accuracy": round(accuracy, 4), "chance": round(chance, 4), "p_value": p, "compared": compared,
            "passed": not (100 * (accuracy - chance) > min_gap and p < alpha)}


def option_extremes(texts: TaskTexts, answers: np.ndarray, *, alpha: float) -> dict[str, Any]:
    """Option texts never right (or always right) more often than chance allows. Under uniform answers a text
    offered in records with k_1, k_2 ... options is never right with probability prod(1 - 1/k_i) and always
    right with prod(1/k_i); a text is flagged when that is below alpha divided by the number of tests
    (Bonferroni over every text offered twice or more, both ways)."""
    n_texts = len(texts.texts)
    ids = texts.text_ids[texts.valid]
    per_option_k = np.broadcast_to(texts.n_options[:, None], texts.valid.shape)[texts.valid]
    offered = np.bincount(ids, minlength=n_texts)
    right = np.bincount(texts.text_ids[np.arange(texts.n), answers], minlength=n_texts)
    log_never = np.bincount(ids, weights=np.log1p(-1 / per_option_k), minlength=n_texts)
    log_always = np.bincount(ids, weights=-np.log(per_option_k), minlength=n_texts)
    tested = offered >= 2
    threshold = np.log(alpha / max(1, 2 * int(tested.sum())))
    never = np.flatnonzero(tested & (right == 0) & (log_never < threshold))
    always = np.flatnonzero(tested & (right == offered) & (log_always < threshold))

    def shown(found: np.ndarray) -> list[dict[str, Any]]:
        top = sorted(found.tolist(), key=lambda t: (-offered[t], texts.texts[t]))[:SHOWN_TEXTS]
        return [{"text": texts.texts[t], "offered": int(offered[t])} for t in top]

    return {"never_right": shown(never), "always_right": shown(always), "never_right_count": int(never.size),
            "always_right_count": int(always.size), "tested": int(tested.sum()),
            "passed": never.size == 0 and always.size == 0}


def image_hashes(root: Path, records: list[dict[str, Any]]) -> list[list[str]]:
    """The content hash of every image of every record (a file named twice is read once)."""
    cache: dict[str, str] = {}
    out = []
    for r in records:
        row = []
        for rel in r["images"]:
            if rel not in cache:
                path = root / rel
                try:
                    cache[rel] = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
                except FileNotFoundError:
                    raise MirdataError(f"{path}: no such image file (named by record {r['id']}); "
                                       f"run `mirdata validate {root}`") from None
            row.append(cache[rel])
        out.append(row)
    return out


def image_owners(hashes: list[list[str]]) -> dict[str, set[int]]:
    """Content hash -> the records (positions in `hashes`) that have an image with those bytes."""
    owners: dict[str, set[int]] = defaultdict(set)
    for i, row in enumerate(hashes):
        for h in row:
            owners[h].add(i)
    return owners


def shared_images(owners: dict[str, set[int]], hashes: list[list[str]], members: list[int]) -> dict[str, Any]:
    """The task's records with an image whose bytes another record (of any task) also has; a failure, since a
    model could then recall one question's image from another."""
    shared = [{h for h in hashes[i] if len(owners[h]) > 1} for i in members]
    files = set().union(*shared) if shared else set()
    records = sum(1 for s in shared if s)
    return {"records": records, "files": len(files), "passed": records == 0}


def duplicates(questions: list[str], options: list[list[str]], hashes: list[list[str]]) -> dict[str, Any]:
    """Records repeating an earlier one's question and options (allowed: the images may differ), and records
    repeating it whole, images included (a failure: the same question counted twice)."""
    text_keys = [(normalise(q), tuple(map(normalise, o))) for q, o in zip(questions, options)]
    whole_keys = [(*key, tuple(h)) for key, h in zip(text_keys, hashes)]
    text_counts = Counter(text_keys)
    top = text_counts.most_common(1)[0][1] if text_counts else 0
    repeated_whole = len(whole_keys) - len(set(whole_keys))
    return {"question_option_duplicates": len(text_keys) - len(text_counts), "distinct_questions":
            len({k[0] for k in text_keys}), "most_repeated": top, "exact_duplicates": repeated_whole,
            "passed": repeated_whole == 0}


def images_per_question(image_lists: list[list[str]]) -> dict[str, Any]:
    counts = np.array([len(images) for images in image_lists])
    return {"mean": round(float(counts.mean()), 3), "min": int(counts.min()), "max": int(counts.max()),
            "passed": bool(counts.min() >= 2)}
