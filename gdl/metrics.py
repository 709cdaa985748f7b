"""Sample-quality and likelihood metrics: FID, KID, Gaussian NLL, bits per dimension.

Pure numpy/scipy on purpose: this module is imported by evaluation stages and tests that
must not pay for a TensorFlow import. Feature extraction (Inception, domain classifier)
lives in :mod:`gdl.backbones`; everything here takes plain ``(n, d)`` feature arrays.

References
----------
- FID: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
  Local Nash Equilibrium".
- KID: Binkowski et al. 2018, "Demystifying MMD GANs" (unbiased MMD^2, cubic polynomial kernel).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "distance_figures",
    "frechet_distance",
    "feature_statistics",
    "fid",
    "kid",
    "fid_bootstrap_std",
    "gaussian_nll",
]


# ----------------------------------------------------------------------------------------
# Frechet distance


def _as_2d_float64(features: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) array, got shape {x.shape}")
    return x


def _symmetric_psd_eigh(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigendecomposition of a matrix that is symmetric PSD up to round-off.

    Symmetrising first keeps ``eigh`` honest (it only reads one triangle), and clipping the
    tiny negative eigenvalues that round-off produces on rank-deficient covariances (fewer
    samples than feature dimensions is the normal case for FID) keeps the sqrt real.
    """
    sym = 0.5 * (matrix + matrix.T)
    eigvals, eigvecs = np.linalg.eigh(sym)
    return np.clip(eigvals, 0.0, None), eigvecs


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Principal square root of a symmetric PSD matrix via ``eigh`` (always real)."""
    eigvals, eigvecs = _symmetric_psd_eigh(matrix)
    return (eigvecs * np.sqrt(eigvals)) @ eigvecs.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

        d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)

    The usual implementation calls ``scipy.linalg.sqrtm(S1 @ S2)``: S1 S2 is not symmetric,
    its Schur-based sqrt can come back complex or inaccurate when the covariances are
    singular, and FID code then needs ad-hoc epsilon hacks. ``S1^1/2 S2 S1^1/2`` has the
    same eigenvalues as ``S1 S2`` but is symmetric PSD, so its trace-sqrt is just the sum of
    square roots of its (clipped) eigenvalues: stable, real, and deterministic.
    Everything runs in float64; the result is clamped at 0 to absorb round-off.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean shapes differ: {mu1.shape} vs {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"covariances must be ({d}, {d}), got {sigma1.shape} and {sigma2.shape}")

    sqrt_s1 = _sqrtm_psd(sigma1)
    inner_eigvals, _ = _symmetric_psd_eigh(sqrt_s1 @ sigma2 @ sqrt_s1)
    tr_covmean = float(np.sum(np.sqrt(inner_eigvals)))

    diff = mu1 - mu2
    result = float(diff @ diff) + float(np.trace(sigma1)) + float(np.trace(sigma2)) - 2.0 * tr_covmean
    return max(result, 0.0)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ddof=1) covariance of ``(n, d)`` features, in float64.

    ddof=1 matches the reference TTUR/pytorch-fid implementations, so our numbers stay
    comparable to published FIDs computed on the same backbone.
    """
    x = _as_2d_float64(features, "features")
    if x.shape[0] < 2:
        raise ValueError("need at least 2 feature vectors to estimate a covariance")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet Inception Distance between two feature sets (any backbone's features)."""
    mu_a, sigma_a = feature_statistics(features_a)
    mu_b, sigma_b = feature_statistics(features_b)
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)


def fid_bootstrap_std(features_a: np.ndarray, features_b: np.ndarray, *, resamples: int = 100,
                      seed: int = 0) -> float:
    """Std of the FID over bootstrap resamples of both feature sets (rows drawn with replacement).

    The sampling noise of one FID figure at these sample counts: two runs whose FIDs differ by less than
    a couple of these are indistinguishable (training-seed noise comes on top; see scripts/seeds.py).
    """
    a = _as_2d_float64(features_a, "features_a")
    b = _as_2d_float64(features_b, "features_b")
    rng = np.random.default_rng(seed)
    draws = [fid(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))]) for _ in range(resamples)]
    return float(np.std(draws, ddof=1))


# ----------------------------------------------------------------------------------------
# Kernel Inception Distance


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3, the kernel of Binkowski et al. 2018 (KID)."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 estimate for equal-size samples (U-statistic: diagonals excluded).

    Can be negative: that is what makes it unbiased, so it is not clamped.
    """
    m = x.shape[0]
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    k_xy = _polynomial_kernel(x, y)
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of unbiased MMD^2 over random subsets.

    Unlike FID, the estimator is unbiased, so it is meaningful at small sample counts
    (our CPU-sized evaluations). Each subset draws ``subset_size`` rows without replacement
    from each set; ``subset_size`` is clipped to the smaller set. Deterministic for a seed.
    """
    a = _as_2d_float64(features_a, "features_a")
    b = _as_2d_float64(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    if subsets < 1:
        raise ValueError("subsets must be >= 1")

    rng = np.random.default_rng(seed)
    estimates = np.empty(subsets, dtype=np.float64)
    for i in range(subsets):
        x = a[rng.choice(a.shape[0], size=m, replace=False)]
        y = b[rng.choice(b.shape[0], size=m, replace=False)]
        estimates[i] = _unbiased_mmd2(x, y)
    return float(estimates.mean()), float(estimates.std())


# ----------------------------------------------------------------------------------------
# Likelihood


def distance_figures(features: np.ndarray, test_features: np.ndarray, evaluation, seed: int,
                     subset_size: int | None = None) -> dict[str, float]:
    """FID with its bootstrap std and KID with its std over subsets, of `features` against `test_features`,
    with the counts of `evaluation` (params.evaluate); `subset_size` overrides its KID subset size."""
    k, k_std = kid(features, test_features, subsets=evaluation.kid_subsets,
                   subset_size=evaluation.kid_subset_size if subset_size is None else subset_size, seed=seed)
    return {"fid": fid(features, test_features),
            "fid_std": fid_bootstrap_std(features, test_features, resamples=evaluation.bootstrap, seed=seed),
            "kid": k, "kid_std": k_std}


def gaussian_nll(train_points: np.ndarray, test_points: np.ndarray) -> float:
    """Mean NLL (nats/point) of ``test_points`` under the ML full-covariance Gaussian of ``train_points``.

    This is the trivial baseline a RealNVP must beat on 2-D data: a flow that does worse
    than one Gaussian has learnt nothing. The covariance is the maximum-likelihood one
    (ddof=0); a Cholesky factor gives log-det and Mahalanobis terms without forming an
    inverse, and raises ``LinAlgError`` if the fitted covariance is singular.
    """
    train = _as_2d_float64(train_points, "train_points")
    test = _as_2d_float64(test_points, "test_points")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"dims differ: {train.shape[1]} vs {test.shape[1]}")
    d = train.shape[1]
    mu = train.mean(axis=0)
    sigma = np.atleast_2d(np.cov(train, rowvar=False, bias=True))

    chol = np.linalg.cholesky(sigma)
    # Solve L z = (x - mu)^T so |z|^2 is the Mahalanobis distance.
    z = np.linalg.solve(chol, (test - mu).T)
    mahalanobis = np.sum(z * z, axis=0)
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    nll = 0.5 * (d * math.log(2.0 * math.pi) + log_det + mahalanobis)
    return float(nll.mean())
