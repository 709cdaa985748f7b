"""Tests for gdl.metrics (FID, KID, likelihoods), gdl.baselines and gdl.backbones.

The metric tests compare against independent computations (scipy's sqrtm, closed forms,
scipy.stats, explicit double loops) rather than re-deriving the same formula. Keras is
imported only inside the backbone tests so the numeric tests stay fast.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from gdl.baselines import PixelMarginals, to_levels
from gdl.metrics import (
    _polynomial_kernel,
    _unbiased_mmd2,
    feature_statistics,
    fid,
    frechet_distance,
    gaussian_nll,
    kid,
)


def _random_spd(rng: np.random.Generator, d: int, cond: float = 10.0) -> np.ndarray:
    """Symmetric positive-definite matrix with eigenvalues in [1, cond]."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * rng.uniform(1.0, cond, size=d)) @ q.T


def _rank_deficient_cov(rng: np.random.Generator, d: int, rank: int) -> np.ndarray:
    a = rng.normal(size=(d, rank))
    return a @ a.T


def _fid_scipy(mu1, s1, mu2, s2) -> float:
    """The textbook (TTUR) formula with scipy's general matrix square root of S1 S2."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def _fid_eigvals(mu1, s1, mu2, s2) -> float:
    """tr sqrt(S1 S2) from the (real, non-negative) eigenvalues of the non-symmetric S1 S2."""
    eig = np.clip(np.linalg.eigvals(s1 @ s2).real, 0.0, None)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.sqrt(eig).sum())


# ----------------------------------------------------------------------------------------
# FID


def test_metrics_and_baselines_do_not_import_tensorflow():
    code = "import sys, gdl.metrics, gdl.baselines; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_scipy_sqrtm(seed):
    rng = np.random.default_rng(seed)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    expected = _fid_scipy(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_frechet_distance_diagonal_closed_form():
    # For commuting (here diagonal) covariances: |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.1, 5.0, size=7), rng.uniform(0.1, 5.0, size=7)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_rank_deficient():
    # Fewer samples than dimensions is the normal FID regime; S1 S2 is then singular.
    rng = np.random.default_rng(4)
    d = 20
    s1, s2 = _rank_deficient_cov(rng, d, 5), _rank_deficient_cov(rng, d, 8)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(got) and got >= 0.0
    assert got == pytest.approx(_fid_eigvals(mu1, s1, mu2, s2), rel=1e-7)
    assert got == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-7)
    # Same singular Gaussian twice: exactly zero up to round-off.
    assert frechet_distance(mu1, s1, mu1, s1) < 1e-8 * np.trace(s1)


def test_fid_identical_features_is_zero_and_shift_gives_squared_norm():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 16))
    assert fid(x, x) < 1e-9
    # Shifting every feature by c leaves the covariance alone: FID = |c|^2 exactly.
    c = rng.normal(size=16)
    assert fid(x, x + c) == pytest.approx(float(c @ c), rel=1e-9)


def test_fid_is_symmetric_and_positive_for_different_distributions():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(400, 10))
    b = rng.normal(size=(30, 10)) * 1.5 + 0.3  # n < d would also be fine; here n > d
    assert fid(a, b) == pytest.approx(fid(b, a), rel=1e-9)
    assert fid(a, b) > 1.0


def test_feature_statistics_float64_and_unbiased():
    x = np.random.default_rng(7).normal(size=(50, 4)).astype(np.float32)
    mu, sigma = feature_statistics(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False, ddof=1))


# ----------------------------------------------------------------------------------------
# KID


def test_unbiased_mmd2_matches_double_loop():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.5
    m, d = len(x), x.shape[1]

    def k(u, v):
        return (u @ v / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert _unbiased_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_near_zero_for_same_distribution_and_positive_for_shift():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16))
    mean, std = kid(a, b, subsets=50, subset_size=100)
    assert std > 0
    assert abs(mean) < 3 * std

    shifted = rng.normal(size=(1000, 16)) + 0.5
    mean_s, std_s = kid(a, shifted, subsets=50, subset_size=100)
    assert mean_s > 5 * std_s
    assert mean_s > 20 * abs(mean)


def test_kid_is_deterministic_for_a_seed_and_clips_subset_size():
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(80, 5)), rng.normal(size=(60, 5)) + 0.2
    assert kid(a, b, subsets=10, seed=3) == kid(a, b, subsets=10, seed=3)
    assert kid(a, b, subsets=10, seed=3) != kid(a, b, subsets=10, seed=4)
    # subset_size=1000 > 60 is clipped to 60: every subset of b is all of b, but a still varies.
    mean, std = kid(a, b, subsets=5, subset_size=1000)
    assert np.isfinite(mean) and std > 0


def test_kid_is_unbiased():
    # Fresh samples each repetition: the average estimate must be ~0 for equal
    # distributions, whereas the biased (V-statistic) estimator sits clearly above 0.
    reps, m, d = 400, 10, 4
    unbiased, biased = np.empty(reps), np.empty(reps)
    for r in range(reps):
        rng = np.random.default_rng(1000 + r)
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        unbiased[r] = kid(x, y, subsets=1, subset_size=m, seed=r)[0]
        biased[r] = (
            _polynomial_kernel(x, x).mean()
            + _polynomial_kernel(y, y).mean()
            - 2 * _polynomial_kernel(x, y).mean()
        )
    stderr = unbiased.std() / math.sqrt(reps)
    assert abs(unbiased.mean()) < 4 * stderr
    assert biased.mean() > 10 * stderr


# ----------------------------------------------------------------------------------------
# Likelihood


def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(11)
    train = rng.multivariate_normal([1.0, -2.0], [[2.0, 0.8], [0.8, 1.0]], size=500)
    test = rng.normal(size=(200, 2)) * 2
    mvn = scipy.stats.multivariate_normal(train.mean(axis=0), np.cov(train.T, bias=True))
    assert gaussian_nll(train, test) == pytest.approx(-mvn.logpdf(test).mean(), rel=1e-10)


def _structured_images(n: int, seed: int = 0) -> np.ndarray:
    """Quantised images whose pixel distributions differ from pixel to pixel."""
    rng = np.random.default_rng(seed)
    centre = np.linspace(0.1, 0.9, 4 * 4 * 3).reshape(4, 4, 3)
    x = np.clip(centre + 0.05 * rng.normal(size=(n, 4, 4, 3)), 0.0, 1.0)
    return (np.rint(x * 255) / 255).astype(np.float32)


def test_pixel_marginals_samples_match_per_pixel_means():
    data = _structured_images(2000)
    baseline = PixelMarginals().fit(data)
    samples = baseline.sample(4000, seed=0)
    assert samples.shape == (4000, 4, 4, 3) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    np.testing.assert_allclose(samples.mean(axis=0), data.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(samples.std(axis=0), data.std(axis=0), atol=0.01)


def test_pixel_marginals_sampling_is_deterministic_and_on_grid():
    baseline = PixelMarginals().fit(_structured_images(100))
    a, b = baseline.sample(7, seed=1), baseline.sample(7, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, baseline.sample(7, seed=2))
    np.testing.assert_array_equal(a * 255, np.rint(a * 255))


def test_pixel_marginals_bits_per_dim():
    data = _structured_images(1000)
    baseline = PixelMarginals().fit(data)
    bpd_data = baseline.bits_per_dim(data)
    noise = np.random.default_rng(1).integers(0, 256, size=(200, 4, 4, 3)) / 255
    assert 0.0 < bpd_data < 8.0
    assert baseline.bits_per_dim(noise) > bpd_data
    # Independent check on one pixel: -log2 of the smoothed frequency of each value.
    counts = np.bincount(to_levels(data)[:, 0], minlength=256)
    probs = (counts + baseline.alpha) / (len(data) + 256 * baseline.alpha)
    expected = -np.log2(probs[to_levels(data)[:, 0]]).mean()
    per_pixel = -baseline.log_probs[0, to_levels(data)[:, 0]].mean() / math.log(2)
    assert per_pixel == pytest.approx(expected, rel=1e-12)


def test_pixel_marginals_constant_images_cost_almost_nothing():
    constant = np.full((100, 8, 8, 1), 128 / 255, dtype=np.float32)
    assert PixelMarginals().fit(constant).bits_per_dim(constant) < 0.05


def test_pixel_marginals_table_for_32x32x3():
    images = np.random.default_rng(2).integers(0, 256, size=(300, 32, 32, 3)) / 255
    baseline = PixelMarginals().fit(images)
    assert baseline.log_probs.shape == (32 * 32 * 3, 256)
    np.testing.assert_allclose(np.exp(baseline.log_probs).sum(axis=1), 1.0)
    assert baseline.sample(2, seed=0).shape == (2, 32, 32, 3)
    # Uniform data under its own (smoothed) marginals: a little under 8 bits/dim at best.
    assert 6.0 < baseline.bits_per_dim(images) < 8.0


# ----------------------------------------------------------------------------------------
# Backbones (Keras)


def _digits_32x32():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # 8x8 values 0..16 -> 32x32 in [0, 1] by 4x nearest-neighbour upsampling.
    images = np.kron(digits.images / 16.0, np.ones((4, 4)))[..., None].astype(np.float32)
    return train_test_split(
        images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )


def test_domain_classifier_features_shape():
    import keras

    from gdl.backbones import build_domain_classifier, domain_features, feature_model

    keras.utils.set_random_seed(0)
    classifier = build_domain_classifier((32, 32, 1), num_classes=10, feature_dim=24)
    images = np.random.default_rng(0).uniform(size=(5, 32, 32, 1)).astype(np.float32)
    feats = domain_features(feature_model(classifier), images)
    assert feats.shape == (5, 24) and feats.dtype == np.float64
    assert np.all(np.isfinite(feats)) and np.all(feats >= 0)  # relu features


def test_domain_classifier_learns_digits():
    import keras

    from gdl.backbones import build_domain_classifier, domain_features, feature_model

    keras.utils.set_random_seed(0)
    x_train, x_test, y_train, y_test = _digits_32x32()
    classifier = build_domain_classifier((32, 32, 1), num_classes=10)
    classifier.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0)  # ~0.95 for seeds 0-2
    _, accuracy = classifier.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.9
    # Held-out digits are far closer (in domain FID) to training digits than noise is.
    f_train = domain_features(feature_model(classifier), x_train)
    f_test = domain_features(feature_model(classifier), x_test)
    noise = np.random.default_rng(0).uniform(size=x_test.shape).astype(np.float32)
    f_noise = domain_features(feature_model(classifier), noise)
    assert fid(f_train, f_test) < 0.1 * fid(f_train, f_noise)


def test_inception_v3_plumbing_with_random_weights():
    """InceptionV3 with random weights: checks resizing, channels, batching and dtypes only.

    Real ImageNet weights cannot be downloaded here (no internet; the pipeline fetches them
    with a pinned hash where it can), so this says nothing about feature quality.
    """
    import keras

    from gdl.backbones import build_inception_v3, inception_features

    keras.utils.set_random_seed(0)
    model = build_inception_v3(None)
    images = np.random.default_rng(0).uniform(size=(3, 32, 32, 1)).astype(np.float32)
    feats = inception_features(model, images, batch_size=2)  # 2 batches: 2 + 1
    assert feats.shape == (3, 2048) and feats.dtype == np.float64
    assert np.all(np.isfinite(feats))


def test_build_inception_v3_rejects_missing_or_wrong_weights(tmp_path):
    from gdl.backbones import build_inception_v3

    with pytest.raises(FileNotFoundError):
        build_inception_v3(tmp_path / "missing.h5")
    bogus = tmp_path / "bogus.h5"
    bogus.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="md5"):
        build_inception_v3(bogus)
