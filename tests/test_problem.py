"""UFMProblem validation and serialisation."""

import pytest

from ufm import UFMProblem, balanced
from ufm.exceptions import UFMError


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"d": 0}, "'d' parameter of UFMProblem must be an int >= 1. Got 0"),
        ({"lam_W": -1.0}, r"'lam_W' parameter of UFMProblem must be a float in \(0, inf\). Got -1.0"),
        ({"lam_H": 0.0}, "'lam_H' parameter"),
        ({"lam_b": -1e-3}, r"'lam_b' parameter of UFMProblem must be a float in \[0, inf\)"),
        ({"lam_W": float("nan")}, "'lam_W'"),
        ({"loss": "mse"}, "'loss' parameter"),
    ],
)
def test_validation_messages(kwargs, match):
    base = {"design": balanced(3, {1: 1}), "d": 2, "lam_W": 1e-3, "lam_H": 1e-3, "lam_b": 0.0}
    with pytest.raises(UFMError, match=match):
        UFMProblem(**(base | kwargs))


def test_roundtrip_dict():
    p = UFMProblem(balanced(4, {1: 2, 2: 1}), 3, 1e-2, 2e-3, 0.0, bias=False, loss="pal-normalized")
    q = UFMProblem.from_dict(p.to_dict())
    assert q.to_dict() == p.to_dict()
    assert q.design.is_balanced and q.mu == pytest.approx(p.mu, rel=1e-15)
