"""The evaluation's metrics on scores whose answers are known by hand or by brute force."""

from __future__ import annotations

import numpy as np

from training.evaluate import deepfake_report, roc_auc, roc_auc_interval


def brute_force_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pairs = [(p > n) + 0.5 * (p == n) for p in scores[positive] for n in scores[~positive]]
    return float(np.mean(pairs))


def test_auc_is_the_share_of_pairs_ordered_right_ties_counting_half() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(200), 1)  # many ties
    positive = rng.random(200) < 0.4
    assert roc_auc(scores, positive) == brute_force_auc(scores, positive)
    assert roc_auc(np.array([0.1, 0.9]), np.array([1, 0])) == 0.0  # 1.0: test_iso_metrics
    assert np.isnan(roc_auc(np.array([0.5, 0.6]), np.array([1, 1])))


def test_auc_weights_count_a_sample_that_many_times() -> None:
    rng = np.random.default_rng(1)
    scores, positive = rng.random(60), rng.random(60) < 0.5
    times = rng.integers(0, 4, 60)
    repeated = np.repeat(np.arange(60), times)
    assert np.isclose(roc_auc(scores, positive, times), brute_force_auc(scores[repeated], positive[repeated]))


def test_interval_brackets_the_auc_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(2)

    def interval(n: int) -> tuple[float, float, float]:
        positive = rng.random(n) < 0.5
        scores = rng.normal(size=n) + 1.5 * positive
        low, high = roc_auc_interval(scores, positive, np.arange(n))
        return low, roc_auc(scores, positive), high

    low, auc, high = interval(200)
    assert low < auc < high
    big_low, big_auc, big_high = interval(5000)
    assert big_low < big_auc < big_high and big_high - big_low < (high - low) / 3
    assert roc_auc_interval(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0]), np.arange(3)) == [1.0, 1.0]


def test_interval_resamples_whole_groups() -> None:
    """Two copies of every image in one group carry no more evidence than one copy: the
    interval is unchanged. Counted as independent images, they would narrow it."""
    rng = np.random.default_rng(3)
    positive = rng.random(300) < 0.5
    scores = rng.normal(size=300) + positive
    once = roc_auc_interval(scores, positive, np.arange(300))
    twice = (np.tile(scores, 2), np.tile(positive, 2))
    assert roc_auc_interval(*twice, np.tile(np.arange(300), 2)) == once
    low, high = roc_auc_interval(*twice, np.arange(600))
    assert high - low < (once[1] - once[0]) * 0.85


def test_deepfake_report_gives_each_kind_against_all_real_faces_with_its_interval() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.25, 0.9, 0.15, 0.8, 0.95])
    kinds = ["real", "real", "real", "faceswap", "faceswap", "gan", "gan", "gan"]
    report = deepfake_report(scores, kinds, threshold=0.5)
    assert report["auc_per_kind"] == {"faceswap": 5 / 6, "gan": 7 / 9}
    assert report["false_positive_rate_real"] == 0.0
    assert report["detection_rate_per_kind"] == {"faceswap": 0.5, "gan": 2 / 3}
    for kind, (low, high) in report["auc_per_kind_95ci"].items():
        assert low <= report["auc_per_kind"][kind] <= high
