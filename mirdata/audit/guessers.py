"""The blind guessers of one task, cross-validated, selected per fold, and rescored under redrawn answers.

Everything is computed for a block of answer vectors at once: row 0 of `runs` holds the real answers and rows
1..R answers drawn uniformly at random. The heuristics rescore a run with a gather (their picks do not depend on
answers); the learned guessers are refitted for every run, the count-based ones with one `bincount` over all runs
and folds, the logistic regression with one solver loop whose weights are a matrix with a column per run.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit
from sklearn.model_selection import GroupKFold

from mirdata.audit.texts import HEURISTICS, TaskTexts

LEARNED = ("majority_letter", "letter_by_position", "option_text_prior", "logistic_regression")
METHODS = (*HEURISTICS, *LEARNED)
FOLDS = 5
# The logistic regression: L2 penalty of sklearn's LogisticRegression(C=1), fitted by at most this many
# majorisation steps (Böhning's bound: one Cholesky factor per training set serves every run).
L2_PENALTY = 1.0
LR_STEPS = 12
LR_TOLERANCE = 1e-4


def answer_runs(answers: np.ndarray, n_options: np.ndarray, runs: int, seed: int, task: str) -> np.ndarray:
    """(1 + runs, records): the real answers, then `runs` vectors drawn uniformly over each record's options.
    The stream depends on the seed and the task name only, so tasks can be audited in any order or in parallel."""
    rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
    drawn = np.floor(rng.random((runs, answers.size)) * n_options[None, :]).astype(np.int64)
    return np.concatenate([answers[None, :], drawn])


def record_folds(n: int, seed: int) -> np.ndarray:
    """Fold of each record: sklearn's GroupKFold over the option rows, every record's options one group."""
    k = min(FOLDS, n)
    groups = np.arange(n)
    fold = np.empty(n, dtype=np.int64)
    for f, (_, test) in enumerate(GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(groups, groups=groups)):
        fold[test] = f
    return fold


def answer_credit(credit: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """(runs, records): the credit each record earns under each run's answer. `credit` is (records, options)
    shared by all runs, or (runs, records, options)."""
    if credit.ndim == 2:
        return credit[np.arange(credit.shape[0])[None, :], runs]
    return np.take_along_axis(credit, runs[:, :, None], axis=2)[:, :, 0]


def tied_best(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Credit of picking the highest score, for scores (runs, records, options): ties share the point."""
    masked = np.where(valid[None], scores, -np.inf)
    best = masked.max(axis=2, keepdims=True)
    picked = valid[None] & (masked >= best - 1e-9 * np.maximum(1.0, np.abs(best)))
    return picked / picked.sum(axis=2, keepdims=True)


def permutation_p(statistic: np.ndarray) -> float:
    """P-value of row 0 against rows 1..R: (1 + runs at least as high) / (1 + R), which is exact for a
    Monte Carlo permutation test (never 0; at R = 100 the smallest is 1/101)."""
    null = statistic[1:]
    return float((1 + np.count_nonzero(null >= statistic[0] - 1e-12)) / (1 + null.size))


@dataclass
class GuessResult:
    accuracy: float  # the per-fold selected method, cross-validated
    p_value: float
    selected_hits: np.ndarray  # (1 + R,) points scored by the selection in each run (for the overall test)
    fold_methods: list[str]  # the method each fold selected (real answers)
    method_accuracy: dict[str, float]  # each method alone, cross-validated where learned
    method_p: dict[str, float]
    folds: int


class _Evaluation:
    """Points per run of each method: `outer[m]` (runs, folds) trained without fold f and scored on it;
    `inner[m]` (runs, folds f, folds g) trained without f and g and scored on g, for the selection in fold f."""

    def __init__(self, texts: TaskTexts, runs: np.ndarray, folds: np.ndarray):
        self.texts, self.runs, self.folds = texts, runs, folds
        self.k = int(folds.max()) + 1
        self.n_runs = runs.shape[0]
        self.members = [np.flatnonzero(folds == f) for f in range(self.k)]
        self.outer: dict[str, np.ndarray] = {}
        self.inner: dict[str, np.ndarray] = {}

    def exclusions(self) -> list[tuple[int, ...]]:
        """Every training set needed: all folds but one (outer), all folds but two (inner)."""
        return [(f,) for f in range(self.k)] + list(itertools.combinations(range(self.k), 2))

    def store(self, name: str, scored: dict[tuple[tuple[int, ...], int], np.ndarray]) -> None:
        """`scored[(excluded folds, fold scored)]` = points per run."""
        outer = np.zeros((self.n_runs, self.k))
        inner = np.zeros((self.n_runs, self.k, self.k))
        for (excluded, g), points in scored.items():
            if len(excluded) == 1:
                outer[:, g] = points
            else:
                f = excluded[0] if excluded[1] == g else excluded[1]
                inner[:, f, g] = points
        self.outer[name], self.inner[name] = outer, inner

    def heuristic(self, name: str, credit: np.ndarray) -> None:
        earned = answer_credit(credit, self.runs)
        per_fold = np.stack([earned[:, m].sum(axis=1) for m in self.members], axis=1)
        self.outer[name] = per_fold
        self.inner[name] = np.broadcast_to(per_fold[:, None, :], (self.n_runs, self.k, self.k))

    def letter_prior(self, name: str, keys: np.ndarray) -> None:
        """The commonest answer letter among training records with the same key."""
        width = self.texts.valid.shape[1]
        n_keys = int(keys.max()) + 1
        flat = ((np.arange(self.n_runs)[:, None] * self.k + self.folds[None, :]) * n_keys + keys[None, :]) * width
        counts = np.bincount((flat + self.runs).ravel(), minlength=self.n_runs * self.k * n_keys * width)
        counts = counts.reshape(self.n_runs, self.k, n_keys, width)
        total = counts.sum(axis=1)
        scored = {}
        for excluded in self.exclusions():
            train = total - counts[:, list(excluded)].sum(axis=1)
            for g in excluded:
                m = self.members[g]
                credit = tied_best(train[:, keys[m], :].astype(float), self.texts.valid[m])
                scored[(excluded, g)] = answer_credit(credit, self.runs[:, m]).sum(axis=1)
        self.store(name, scored)

    def option_text_prior(self) -> None:
        """How often an option's text was the answer where the training records offered it, shrunk towards the
        record's chance by one pseudo-record; a text never seen in training scores chance."""
        texts = self.texts
        n_texts = len(texts.texts)
        rows = np.arange(texts.n)
        right_ids = texts.text_ids[rows[None, :], self.runs]  # (runs, records)
        flat = (np.arange(self.n_runs)[:, None] * self.k + self.folds[None, :]) * n_texts + right_ids
        right = np.bincount(flat.ravel(), minlength=self.n_runs * self.k * n_texts).reshape(self.n_runs, self.k,
                                                                                               n_texts)
        offered = np.zeros((self.k, n_texts))
        for f, m in enumerate(self.members):
            ids = texts.text_ids[m][texts.valid[m]]
            offered[f] = np.bincount(ids, minlength=n_texts)
        right_total, offered_total = right.sum(axis=1), offered.sum(axis=0)
        scored = {}
        for excluded in self.exclusions():
            train_right = right_total - right[:, list(excluded)].sum(axis=1)
            train_offered = offered_total - offered[list(excluded)].sum(axis=0)
            for g in excluded:
                m = self.members[g]
                ids = np.where(texts.valid[m], texts.text_ids[m], 0)
                chance = 1.0 / texts.n_options[m][:, None]
                rate = (train_right[:, ids] + chance[None]) / (train_offered[ids] + 1.0)[None]
                credit = tied_best(rate, texts.valid[m])
                scored[(excluded, g)] = answer_credit(credit, self.runs[:, m]).sum(axis=1)
        self.store("option_text_prior", scored)

    def logistic_regression(self, features: np.ndarray) -> None:
        """L2-penalised logistic regression of "this option is the answer" on the option's features; the pick is
        the option with the highest score. Fitted for every run at once."""
        texts = self.texts
        x = np.concatenate([np.ones((*features.shape[:2], 1)), features], axis=2).astype(np.float32)
        width = x.shape[1]
        labels = (self.runs[:, :, None] == np.arange(width)[None, None, :])  # (runs, records, options)
        in_fold = [np.isin(self.folds, excluded) for excluded in self.exclusions()]
        scored = {}
        for excluded, held_out in zip(self.exclusions(), in_fold):
            train = ~held_out
            rows = x[train][texts.valid[train]]  # (options, features)
            y = labels[:, train][:, texts.valid[train]].T.astype(np.float32)  # (options, runs)
            w = fit_logistic(rows, y)
            for g in excluded:
                m = self.members[g]
                scores = np.einsum("nkd,dr->rnk", x[m], w)
                credit = tied_best(scores, texts.valid[m])
                scored[(excluded, g)] = answer_credit(credit, self.runs[:, m]).sum(axis=1)
        self.store("logistic_regression", scored)

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        """The method each fold picks from the other folds' points (ties: the first in METHODS), for every run;
        returns (runs, folds) method indices and the points they score on their folds."""
        sizes = np.array([m.size for m in self.members])
        others = sizes.sum() - sizes
        inner = np.stack([self.inner[m] for m in METHODS])  # (methods, runs, f, g)
        mask = ~np.eye(self.k, dtype=bool)
        other_points = (inner * mask[None, None]).sum(axis=3) / np.maximum(others, 1)[None, None, :]
        chosen = other_points.argmax(axis=0)  # (runs, folds)
        outer = np.stack([self.outer[m] for m in METHODS])  # (methods, runs, folds)
        points = np.take_along_axis(outer, chosen[None], axis=0)[0]
        return chosen, points


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = LR_STEPS) -> np.ndarray:
    """Weights (features, runs) minimising, for each column of `y`, the log-loss plus L2_PENALTY/2 times the squared
    weights (the first column of `x`, the intercept, unpenalised): sklearn's LogisticRegression(C=1/L2_PENALTY).

    Majorisation-minimisation with Böhning's bound X'X/4 on the Hessian: every step decreases every column's loss,
    and one Cholesky factor serves all columns. At most `steps` steps from zero; tests compare the result with scikit-learn's."""
    d = x.shape[1]
    penalty = np.full(d, L2_PENALTY, dtype=np.float64)
    penalty[0] = 0.0
    bound = (x.T.astype(np.float64) @ x) / 4 + np.diag(penalty) + 1e-6 * np.eye(d)
    factor = cho_factor(bound)
    w = np.zeros((d, y.shape[1]), dtype=np.float32)
    pen = penalty.astype(np.float32)[:, None]
    for _ in range(steps):
        gradient = x.T @ (expit(x @ w) - y) + pen * w
        step = cho_solve(factor, gradient).astype(np.float32)
        w -= step
        if np.abs(step).max() < LR_TOLERANCE:
            break
    return w


def evaluate_guessers(texts: TaskTexts, answer_sets: np.ndarray, positions: np.ndarray, *, seed: int) -> GuessResult:
    """Cross-validate every blind guesser on one task, select per fold, and test against redrawn answers
    (`answer_sets` from `answer_runs`: the real answers first)."""
    folds = record_folds(texts.n, seed)
    ev = _Evaluation(texts, answer_sets, folds)
    credits = texts.heuristic_credits()
    for name in HEURISTICS:
        ev.heuristic(name, credits[name])
    k = texts.n_options
    ev.letter_prior("majority_letter", np.unique(k, return_inverse=True)[1])
    ev.letter_prior("letter_by_position", np.unique(k * 1000 + positions % k, return_inverse=True)[1])
    ev.option_text_prior()
    ev.logistic_regression(texts.features(credits))

    chosen, points = ev.select()
    selected_hits = points.sum(axis=1)
    accuracy = selected_hits / texts.n
    method_accuracy, method_p = {}, {}
    for name in METHODS:
        per_run = ev.outer[name].sum(axis=1) / texts.n
        method_accuracy[name] = float(per_run[0])
        method_p[name] = permutation_p(per_run)
    return GuessResult(accuracy=float(accuracy[0]), p_value=permutation_p(accuracy), selected_hits=selected_hits,
                       fold_methods=[METHODS[m] for m in chosen[0]], method_accuracy=method_accuracy,
                       method_p=method_p, folds=ev.k)
