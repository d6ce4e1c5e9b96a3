"""PaDiM's statistics: one multivariate Gaussian per feature-grid position, learned in one pass.

Defard et al. 2021, section 3.2: at every position ``p`` of the feature grid the good parts' feature
vectors ``x_p`` are modelled as ``N(mu_p, Sigma_p)`` with

    Sigma_p = 1/(N-1) sum_k (x_pk - mu_p)(x_pk - mu_p)^T + eps I,   eps = 0.01,

and a test feature scores its Mahalanobis distance ``sqrt((x - mu_p)^T Sigma_p^-1 (x - mu_p))``.

The sums are accumulated batch by batch (:class:`GaussianAccumulator`), so memory is one ``D x D``
matrix per position whatever the number of training images -- no feature bank, no coreset. They are
taken about a shift (the first batch's mean per position), so the float32 sums lose nothing to
cancellation; the covariance is then finished, regularised and inverted in float64, a chunk of
positions at a time, in place of the sums.

The inversion uses a Cholesky factorisation: the matrices are symmetric positive definite by
construction, and torch's batched LU inverse (``torch.linalg.inv``) fails with oneMKL errors on the
CPU for batches of matrices larger than 128 x 128 when torch runs on 2 threads (torch 2.14; seen here
with ``D = 152``, as the station's benchmarks run).
"""

from __future__ import annotations

import numpy as np
import torch

PAPER_EPSILON = 0.01
_CHUNK_ELEMENTS = 1 << 24  # float64 elements finished at once (128 MB)


def random_channels(total: int, count: int, seed: int) -> np.ndarray:
    """A sorted random subset of ``count`` of ``total`` feature channels (the paper's "Rd"
    reduction), reproducible from ``seed``; all channels when ``count >= total``."""
    if count < 1:
        raise ValueError(f"PaDiM needs at least one feature channel, got n_features={count}")
    if count >= total:
        return np.arange(total, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=count, replace=False)).astype(np.int64)


def statistics_bytes(positions: int, dim: int) -> int:
    """Memory of the per-position ``D x D`` float32 matrices (the accumulator, later the inverses)."""
    return int(positions) * int(dim) * int(dim) * 4


class GaussianAccumulator:
    """Streaming sums of the feature vectors at each of ``positions`` grid positions.

    :meth:`add` takes features ``(B, D, h, w)`` (``h * w == positions``); :meth:`finish` returns the
    means ``(P, D)`` and the inverse covariances ``(P, D, D)``, both float32.
    """

    def __init__(self, positions: int, dim: int, device: torch.device | str = "cpu") -> None:
        self.positions, self.dim = int(positions), int(dim)
        self.device = torch.device(device)
        self.count = 0
        self.shift: torch.Tensor | None = None  # (P, D)
        self.sum = torch.zeros((self.positions, self.dim), dtype=torch.float32, device=self.device)
        self.outer = torch.zeros((self.positions, self.dim, self.dim), dtype=torch.float32, device=self.device)

    def add(self, features: torch.Tensor) -> None:
        b, d, h, w = features.shape
        if d != self.dim or h * w != self.positions:
            raise ValueError(f"features {tuple(features.shape)} do not fit a {self.positions}-position, "
                             f"{self.dim}-channel Gaussian")
        x = features.detach().float().permute(2, 3, 0, 1).reshape(self.positions, b, d)  # (P, B, D)
        if self.shift is None:
            self.shift = x.mean(1)
        x = x - self.shift.unsqueeze(1)
        self.sum += x.sum(1)
        self.outer.baddbmm_(x.transpose(1, 2), x)
        self.count += b

    def finish(self, epsilon: float = PAPER_EPSILON) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and inverse covariances (float32). The accumulator's memory becomes the inverses,
        so it cannot be used afterwards."""
        if self.count == 0 or self.shift is None:
            raise ValueError("PaDiM saw no training features")
        n = self.count
        delta = self.sum / n  # mean - shift, small
        mean = self.shift + delta
        eye = torch.eye(self.dim, dtype=torch.float64, device=self.device)
        step = max(1, _CHUNK_ELEMENTS // (self.dim * self.dim))
        for start in range(0, self.positions, step):
            sl = slice(start, start + step)
            dd = delta[sl].double()
            cov = self.outer[sl].double() - n * dd.unsqueeze(2) * dd.unsqueeze(1)
            cov = cov / max(n - 1, 1) + float(epsilon) * eye
            self.outer[sl] = inverse_spd(cov).float()
        inverse, self.outer = self.outer, torch.empty(0)
        return mean, inverse


def inverse_spd(matrices: torch.Tensor) -> torch.Tensor:
    """Inverses of a batch of symmetric positive definite matrices (via Cholesky)."""
    factor, info = torch.linalg.cholesky_ex(matrices)
    if bool((info > 0).any()):  # only with eps <= 0 or non-finite features
        raise ValueError("a covariance matrix is not positive definite; use a positive epsilon "
                         "and check the training images")
    return torch.cholesky_inverse(factor)
