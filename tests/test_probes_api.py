"""Probes of the Python API's public boundary: wrong types, shapes, dtypes and values.

Each call must raise TypeError, ValueError or UFMError (a ValueError) with one sentence that
names the argument -- never an AttributeError, a raw numpy error or a LinAlgError from deep
inside -- or return a result.
"""

from __future__ import annotations

import numpy as np
import pytest

import ufm
from ufm.exceptions import UFMError

P = ufm.UFMProblem(ufm.balanced(3, {1: 2}), d=3, lam_W=1e-2, lam_H=1e-2, lam_b=1e-2)
W0, H0, B0 = ufm.predicted_minimizer(P)
Y0 = P.design.Y


def _nan(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flat[0] = np.nan
    return a


def _inf(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flat[-1] = np.inf
    return a


# name: (call, expected exception, a word the message must hold)
CASES = {
    "solve None": (lambda: ufm.solve(None), TypeError, "problem"),
    "solve list": (lambda: ufm.solve([1, 2, 3]), TypeError, "problem"),
    "solve dict": (lambda: ufm.solve({"K": 3}), TypeError, "problem"),
    "solve method int": (lambda: ufm.solve(P, 3), TypeError, "method"),
    "solve method unknown": (lambda: ufm.solve(P, "newton"), UFMError, "newton"),
    "certify dict": (lambda: ufm.certify({}, W0, H0, B0), TypeError, "problem"),
    "certify None": (lambda: ufm.certify(None, W0, H0, B0), TypeError, "problem"),
    "certify W wrong shape": (lambda: ufm.certify(P, W0[:2], H0, B0), UFMError, "W"),
    "certify H transposed": (lambda: ufm.certify(P, W0, H0.T, B0), UFMError, "H"),
    "certify b wrong shape": (lambda: ufm.certify(P, W0, H0, np.zeros(5)), UFMError, "b"),
    "certify W NaN": (lambda: ufm.certify(P, _nan(W0), H0, B0), UFMError, "W"),
    "certify H Inf": (lambda: ufm.certify(P, W0, _inf(H0), B0), UFMError, "H"),
    "certify W complex": (lambda: ufm.certify(P, W0 + 1j, H0, B0), UFMError, "W"),
    "certify W strings": (lambda: ufm.certify(P, np.full((3, 3), "a"), H0, B0), UFMError, "W"),
    "certify W object": (lambda: ufm.certify(P, np.array([None] * 9).reshape(3, 3), H0, B0), UFMError, "W"),
    "verify None": (lambda: ufm.verify(None, W0, H0, B0), TypeError, "problem"),
    "verify ints": (lambda: ufm.verify(P, 1, 2, 3), UFMError, "W"),
    "verify W wrong shape": (lambda: ufm.verify(P, np.zeros((2, 2)), H0, B0), UFMError, "W"),
    "verify H wrong shape": (lambda: ufm.verify(P, W0, np.zeros((3, 5)), B0), UFMError, "H"),
    "verify b wrong shape": (lambda: ufm.verify(P, W0, H0, np.zeros((3, 1))), UFMError, "b"),
    "verify W complex": (lambda: ufm.verify(P, W0 * 1j, H0, B0), UFMError, "W"),
    "verify prediction wrong type": (lambda: ufm.verify(P, W0, H0, B0, prediction="x"), TypeError, "prediction"),
    "verify tol negative": (lambda: ufm.verify(P, W0, H0, B0, tol_value=-1), UFMError, "tol_value"),
    "all_metrics H NaN": (lambda: ufm.all_metrics(W0, _nan(H0), B0, Y0), UFMError, "'H'"),
    "all_metrics H Inf": (lambda: ufm.all_metrics(W0, _inf(H0), B0, Y0), UFMError, "'H'"),
    "all_metrics W NaN": (lambda: ufm.all_metrics(_nan(W0), H0, B0, Y0), UFMError, "'W'"),
    "all_metrics b NaN": (lambda: ufm.all_metrics(W0, H0, _nan(B0), Y0), UFMError, "'b'"),
    "all_metrics Y 0.5": (lambda: ufm.all_metrics(W0, H0, B0, Y0 * 0.5), UFMError, "'Y'"),
    "all_metrics Y 2": (lambda: ufm.all_metrics(W0, H0, B0, Y0 * 2), UFMError, "'Y'"),
    "all_metrics Y NaN": (lambda: ufm.all_metrics(W0, H0, B0, _nan(Y0)), UFMError, "'Y'"),
    "all_metrics c string": (lambda: ufm.all_metrics(W0, H0, B0, Y0, "x"), TypeError, "predicted_scale"),
    "all_metrics c list": (lambda: ufm.all_metrics(W0, H0, B0, Y0, [1.0]), TypeError, "predicted_scale"),
    "all_metrics c bad values": (lambda: ufm.all_metrics(W0, H0, B0, Y0, {2: "a"}), TypeError,
                                 "predicted_scale"),
    "all_metrics W 1-D": (lambda: ufm.all_metrics(W0.ravel(), H0, B0, Y0), UFMError, "'W'"),
    "all_metrics H columns differ from Y": (lambda: ufm.all_metrics(W0, H0[:, :2], B0, Y0), UFMError, "Y"),
    "all_metrics W columns differ from d": (lambda: ufm.all_metrics(W0[:, :2], H0, B0, Y0), UFMError, "W"),
    "all_metrics b wrong shape": (lambda: ufm.all_metrics(W0, H0, np.zeros(7), Y0), UFMError, "'b'"),
    "all_metrics W None": (lambda: ufm.all_metrics(None, H0, B0, Y0), UFMError, "'W'"),
    "all_metrics Y strings": (lambda: ufm.all_metrics(W0, H0, B0, np.full(Y0.shape, "1")), UFMError, "'Y'"),
    "all_metrics H complex": (lambda: ufm.all_metrics(W0, H0 + 0j, B0, Y0), UFMError, "'H'"),
    "all_metrics center unknown": (lambda: ufm.all_metrics(W0, H0, B0, Y0, center="x"), UFMError, "center"),
    "from_indicator None": (lambda: ufm.from_indicator(None), TypeError, "'Y'"),
    "from_indicator string": (lambda: ufm.from_indicator("101"), TypeError, "'Y'"),
    "from_indicator 1-D": (lambda: ufm.from_indicator(np.ones(4)), UFMError, "Y"),
    "from_indicator one class": (lambda: ufm.from_indicator(np.ones((1, 4))), UFMError, "Y"),
    "from_indicator 0.5": (lambda: ufm.from_indicator(np.full((2, 3), 0.5)), UFMError, "0/1"),
    "from_indicator 2": (lambda: ufm.from_indicator(np.array([[2, 0], [0, 1]])), UFMError, "0/1"),
    "from_indicator NaN": (lambda: ufm.from_indicator(_nan(np.eye(2))), UFMError, "0/1"),
    "from_indicator complex": (lambda: ufm.from_indicator(np.eye(2) + 0j), UFMError, "'Y'"),
    "from_indicator empty column": (lambda: ufm.from_indicator(np.array([[1, 0], [0, 0]])), UFMError, "empty"),
    "from_indicator too large for memory": (lambda: ufm.from_indicator(np.broadcast_to(np.int8(1), (10, 10**11))),
                                            UFMError, "GiB"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_boundary_refuses_in_one_sentence_naming_the_argument(name):
    call, exc, word = CASES[name]
    with pytest.raises(exc) as info:
        call()
    assert type(info.value) in (TypeError, ValueError, UFMError), type(info.value)
    msg = str(info.value)
    assert word in msg, msg
    assert "\n" not in msg.strip(), msg


def test_good_input_still_gives_results():
    """The checks refuse only what is wrong: every function still works on valid input (ints,
    bools for Y, lists), and from_indicator's vectorised set count matches a loop over columns."""
    out = ufm.all_metrics(W0.tolist(), H0, None, Y0.astype(bool), {2: 1.0})
    assert out["nc1"] < 1e-12
    assert ufm.certify(P, W0, H0, B0).rel_gap < 1e-12
    assert ufm.verify(P, W0, H0, B0).passed
    rng = np.random.default_rng(3)
    Y = (rng.random((5, 400)) < 0.3).astype(int)
    Y[0, Y.sum(0) == 0] = 1
    design, order = ufm.from_indicator(Y)
    assert (Y[:, order] == design.Y).all()
    counts: dict[tuple[int, ...], int] = {}
    for i in range(Y.shape[1]):  # the reference: one tuple per column
        S = tuple(np.flatnonzero(Y[:, i]).tolist())
        counts[S] = counts.get(S, 0) + 1
    assert dict(zip(design.sets, design.counts)) == counts
