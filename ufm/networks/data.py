"""A multi-label data set from scikit-learn's bundled 8x8 digits (no download).

A sample with label set ``S`` is the pixel-wise maximum of one image of each digit in
``S`` (the construction of the official multi-label MNIST code, on the 8x8 digits that
ship with scikit-learn). Classes are the digits ``0 .. K-1`` (``K <= 10``); label sets of
size 1 and 2. Every digit's images are split once into a training and a held-out pool
(``test_fraction``); training samples are drawn from the training pools, test samples
from the held-out ones, so no test sample shares an image with a training sample.

Samples come in the canonical order of the design (:mod:`ufm.designs`): the training
features of a network are then directly a candidate ``H`` of the UFM problem with the
same design.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..designs import LabelDesign, as_rng
from ..exceptions import UFMError

N_DIGITS = 10
PIXELS = 64


@dataclass(frozen=True)
class MultiLabelDigits:
    """Training and held-out samples: ``X`` (N, 64) pixels in [0, 1], ``Y`` (K, N) 0/1."""

    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    design: LabelDesign


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 bundled 8x8 digits as ``(images (n, 64) in [0, 1], digit (n,))``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise UFMError("The digits data set needs scikit-learn: pip install 'ufm[nn]'.") from None
    data = load_digits()
    return np.asarray(data.data, dtype=np.float64) / 16.0, np.asarray(data.target, dtype=np.int64)


def check_design(design: LabelDesign) -> None:
    """Refuse designs the digits cannot realise (K > 10, label sets larger than 2)."""
    if design.K > N_DIGITS:
        raise UFMError(f"The digits data set has 10 classes; the design has K = {design.K}.")
    big = [S for S in design.sets if len(S) > 2]
    if big:
        raise UFMError(f"The digits data set combines one or two digits per sample; the design has "
                       f"label sets of size {len(big[0])} (e.g. {big[0]}).")


def _compose(design: LabelDesign, pools: list[np.ndarray], images: np.ndarray,
             gen: np.random.Generator) -> np.ndarray:
    """One sample per design position (canonical order): the max over one image per digit."""
    X = np.empty((design.N, PIXELS))
    for S, sl in zip(design.sets, design.group_slices):
        n = sl.stop - sl.start
        picks = [images[gen.choice(pools[k], size=n, replace=n > pools[k].size)] for k in S]
        X[sl] = np.maximum.reduce(picks) if len(picks) > 1 else picks[0]
    return X


def multilabel_digits(design: LabelDesign, *, test_fraction: float = 1 / 3,
                      rng: np.random.Generator | int | None = 0) -> MultiLabelDigits:
    """Training samples for ``design`` and a held-out set with the same design.

    ``rng`` fixes the split of each digit's images and the images drawn for every sample.
    """
    check_design(design)
    if not 0 < test_fraction < 1:
        raise UFMError(f"test_fraction must be in (0, 1); got {test_fraction}.")
    gen = as_rng(rng)
    images, digit = load_digit_images()
    train_pools, test_pools = [], []
    for k in range(design.K):
        idx = gen.permutation(np.flatnonzero(digit == k))
        n_test = int(round(test_fraction * idx.size))
        test_pools.append(np.sort(idx[:n_test]))
        train_pools.append(np.sort(idx[n_test:]))
    X_train = _compose(design, train_pools, images, gen)
    X_test = _compose(design, test_pools, images, gen)
    Y = design.Y.astype(np.float64)
    return MultiLabelDigits(X_train, Y, X_test, Y.copy(), design)
