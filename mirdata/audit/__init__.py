"""`mirdata audit`: does every task need its images? Text-only guessers against chance, and the checks beside them.

What is tested. For each task, a family of blind guessers sees only the question text and the option texts (never
an image, a reasoning stage or `meta`) and picks an option:

* letter priors: the commonest answer letter (per number of options), and the commonest letter at the record's
  position (its index modulo the number of options);
* option heuristics: the longest option, the shortest, the one sharing the most content words with the
  question, the one closest to all the others in edit distance (distractors made by perturbing the answer
  surround it), and, for orderings, the one the fewest swaps (exchanges of two items) from the other orderings;
* learned guessers: an option-text prior (how often a text was the answer where the training records offered
  it) and an L2 logistic regression on option-text and question × option features.

Tied picks share the point, so a guesser that cannot tell options apart scores exactly chance in expectation and
no tie is broken by letter.

How the method is chosen. Records are split into 5 folds (sklearn's GroupKFold over the option rows, every
record's options one group). For fold f, every guesser is scored on the other folds only, the learned ones
trained without f and without the fold they are scored on, so fold f's answers take no part in choosing its
method; the winner is then scored on f, trained (where it learns) on all folds but f. The blind accuracy is the
sum of those fold scores over the task's records: an honest out-of-sample figure for "the best blind guesser
one would pick", not the best of many figures.

Why the p-value is valid. The null hypothesis is that the answer of each record is uniform over its options and
independent of its texts. The whole procedure above (folds, training, per-fold selection, scoring) is run again on
R answer vectors drawn from that null, with the same texts; under the null the real answers are one more such
draw, so the rank of the real accuracy among the R + 1 is uniform, and p = (1 + #runs at least as accurate) /
(1 + R) is an exact Monte Carlo p-value however many guessers are tried. A task fails when the selected
method beats chance by more than `min_gap` points with p < alpha. With few records the runs often reach the
real accuracy, so a handful of records never fails by bad luck. The overall test adds the tasks' scores run by
run (each task's runs are independent draws, so their sum is a draw of the overall null).

The checks beside the guessers fail where they show something chance would not: letter shares per option
count (chi-square against uniform letters, its p-value from multinomial draws), the letter guessed from the
records at the same index in the other tasks (the same runs give its p-value), option texts never or always
right (their null probability below alpha over the number of texts tested), records repeated whole, image files
whose bytes another record also has, and questions with fewer than two images.
"""

from mirdata.audit.report import (
    AuditReport,
    AuditSettings,
    audit_dir,
    audit_records,
    audit_table,
    failure_lines,
    plot_audit,
)

__all__ = ["AuditReport", "AuditSettings", "audit_dir", "audit_records", "audit_table", "failure_lines", "plot_audit"]
