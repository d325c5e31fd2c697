"""Population membership-inference attacks used to audit unlearning: MIA-efficacy (SVC on true-label
confidence; Jia et al., NeurIPS 2023) and an entropy logistic-regression attack (after Song & Mittal,
"Systematic Evaluation of Privacy Risks of Machine Learning Models", USENIX Security 2021).

Both take per-example scores so they can be tested on hand-made numbers; the audit feeds
them model outputs.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from erasekit.core.errors import ErasekitError


def _column(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def mia_efficacy(member_confidence, nonmember_confidence, forget_confidence) -> float:
    """Fraction of forget examples an SVC attack labels *non-member* (SalUn/Sparse convention).

    The attack is ``SVC(C=3, kernel="rbf", gamma="auto")`` on the true-label confidence,
    trained on shadow members (retain examples) → 1 and non-members (test examples) → 0.
    Direction: higher looks more forgotten; the target is the retrain reference's value,
    not 1. Returned in [0, 1] (the papers print it ×100).
    """
    members, nonmembers, forget = map(_column, (member_confidence, nonmember_confidence, forget_confidence))
    if len(members) == 0 or len(nonmembers) == 0 or len(forget) == 0:
        raise ErasekitError("MIA needs non-empty member, non-member and forget sets")
    features = np.vstack([members, nonmembers])
    target = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    attack = SVC(C=3, kernel="rbf", gamma="auto").fit(features, target)
    return float(np.mean(attack.predict(forget) == 0))


def entropy_member_rate(retain_entropy, test_entropy, forget_entropy, seed: int = 0, max_per_side: int | None = None) -> float:
    """Mean predicted-member rate on the forget set of an entropy logistic-regression attack.

    ``LogisticRegression(class_weight="balanced")`` on prediction entropy, retain → 1 vs
    test → 0, both sides subsampled to the same size. Direction: lower looks more
    forgotten; compare with the retrain reference. In [0, 1].
    """
    retain, test, forget = map(_column, (retain_entropy, test_entropy, forget_entropy))
    if len(retain) == 0 or len(test) == 0 or len(forget) == 0:
        raise ErasekitError("the entropy attack needs non-empty retain, test and forget sets")
    rng = np.random.default_rng(seed)
    size = min(len(retain), len(test), max_per_side or len(retain))
    retain = retain[rng.choice(len(retain), size, replace=False)]
    test = test[rng.choice(len(test), size, replace=False)]
    features = np.vstack([retain, test])
    target = np.concatenate([np.ones(size), np.zeros(size)])
    attack = LogisticRegression(class_weight="balanced").fit(features, target)
    return float(np.mean(attack.predict(forget) == 1))
