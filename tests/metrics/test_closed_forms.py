"""Every metric's maths against a case computed by hand."""

import numpy as np
import pytest

from t2igan.metrics.diversity import mean_pairwise_distance
from t2igan.metrics.fid import fid_from_features, frechet_distance
from t2igan.metrics.inception_score import inception_score
from t2igan.metrics.kid import kernel_inception_distance, polynomial_mmd2_unbiased
from t2igan.metrics.nearest_neighbours import nearest_neighbours
from t2igan.metrics.r_precision import r_precision, r_precision_hits


def test_is_uniform_classifier_is_one():
    mean, std = inception_score(np.full((100, 7), 1 / 7), splits=10)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0)


def test_is_confident_balanced_is_k():
    k = 5
    probs = np.eye(k)[np.arange(200) % k]  # each split of 20 holds 4 of every class
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_is_collapsed_confident_is_one():
    assert inception_score(np.eye(4)[np.zeros(50, int)], splits=5)[0] == pytest.approx(1.0)


def test_fid_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_closed_form_of_gaussians():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    s1 = a @ a.T + np.eye(4)
    s2 = np.diag([1.0, 2.0, 3.0, 4.0])
    mu1, mu2 = np.zeros(4), np.array([1.0, 2.0, 0.0, -1.0])
    # closed form with a symmetric square root: Tr((Σ1Σ2)^½) = Tr((Σ2^½ Σ1 Σ2^½)^½)
    r = np.sqrt(s2)
    w = np.linalg.eigvalsh(r @ s1 @ r)
    expected = 6.0 + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(w).sum()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    # 1-D: (μ1−μ2)² + (σ1−σ2)²
    assert frechet_distance(np.array([0.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]])) == pytest.approx(
        9.0 + 1.0
    )


def test_fid_of_shifted_samples_matches_shift():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 3))
    assert fid_from_features(x, x + np.array([1.0, 2.0, 2.0])) == pytest.approx(9.0, abs=1e-6)


def test_kid_unbiased_estimator_tiny_case():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    k = lambda a, b: (a @ b / 2 + 1) ** 3  # noqa: E731
    kxx = k(x[0], x[1])  # off-diagonal terms only, m = 2 → mean of the 2 ordered pairs
    kyy = k(y[0], y[1])
    kxy = np.mean([k(a, b) for a in x for b in y])
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(kxx + kyy - 2 * kxy)
    z = np.random.default_rng(0).normal(size=(400, 4))
    mean, _ = kernel_inception_distance(z[:200], z[200:], num_subsets=10, subset_size=100)
    assert abs(mean) < 0.05  # unbiased: ≈ 0 for the same distribution


def test_r_precision_perfect_and_random_scorers():
    rng = np.random.default_rng(0)
    n, c, d = 200, 100, 16
    cand = rng.normal(size=(n, c, d))
    assert r_precision(cand[:, 0] * 3.0, cand)[0] == 1.0  # image = its true caption direction
    mean, _ = r_precision(rng.normal(size=(n, d)), cand)
    assert mean < 0.05  # random: ≈ 1/100
    assert not r_precision_hits(np.ones((3, d)), np.ones((3, c, d))).any()  # ties count against


def test_nearest_neighbour_finds_exact_duplicate():
    bank = np.random.default_rng(0).normal(size=(100, 12))
    d, i = nearest_neighbours(bank[[42, 7]], bank, k=3)
    assert list(i[:, 0]) == [42, 7] and np.allclose(d[:, 0], 0, atol=1e-3)


def test_mean_pairwise_distance():
    g = np.array([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]])
    assert np.allclose(mean_pairwise_distance(g), [5.0, 0.0])
