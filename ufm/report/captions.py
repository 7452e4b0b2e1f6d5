"""One- or two-sentence captions of the report's figures: what to look at.

``render`` prints ``Figure `name` ([png], [pdf]): CAPTION`` under each figure; a figure
without an entry here gets the links only. Captions say what the reader should see, not
numbers (the findings above each figure give those, computed from the records).
"""

from __future__ import annotations

CAPTIONS: dict[str, str] = {
    "phase_mu": (
        "Left: the margins s*_m the theorem predicts (lines) and those measured (markers) fall to 0 "
        "exactly at mu = mu_crit. Right: sqrt(lam_W) ||W||_F = sqrt((K-1) mu sigma) rises with mu, then "
        "falls continuously to 0 at mu_crit, and does not depend on lam_W / lam_H at fixed mu."),
    "phase_diagram": (
        "Colour: log10 ||W||_F of the optimum over the share of pair samples and mu; grey cells are "
        "trivial (W = 0). The predicted mu_crit (red) should run along the edge between colour and grey."),
    "nc_iterations": (
        "One problem solved by GD, AGD and L-BFGS: every NC metric falls with the gap F - min phi. "
        "The circles mark the first record with NC2_W below 1e-6, the iterations the table above counts."),
    "dimension": (
        "Below d = K-1 (left of the dashed line) F stays above min phi (left) and W W^T away from the "
        "ETF (right); from d = K-1 on both are 0 up to rounding (triangles on the bottom edge)."),
    "dimension_geometry": (
        "What replaces the ETF below d = K-1: the classifier rows at d = 2 (top; a cross is a dead row) "
        "and the cosines between rows at d = K-2 (bottom; an ETF would give -1/(K-1) everywhere)."),
    "imbalance_maps": (
        "Each off-diagonal cell is the pair {j, k} with its count n: its tag-wise angle (left; 0 under "
        "balance) and scale (right). The diagonal gives the single label {j} and its count; top: singles "
        "imbalanced, bottom: one heavy pair {0, 1}."),
    "imbalance_trends": (
        "Left: a classifier row's norm grows with its class's single-label count. Middle and right: the "
        "heavy pair's tag-wise scale and angle against its count, next to the light pairs'."),
    "cm_predicted_vs_measured": (
        "Left: each measured tag-wise scale against the predicted c_m = m s*_m / s*_1; they lie on the "
        "diagonal. Right: their relative error, at or near the rounding floor."),
    "losses": (
        "The same designs under three losses: the PAL loss and its normalised version keep the ETF "
        "(NC2_W at the floor) and the tag-wise angle 0 on balanced designs, binary cross-entropy does not; "
        "the pair scale differs between all three."),
    "fixed_compare": (
        "A classifier frozen to an ETF with rows of norm 0.5, 1 or 2 against the learned one: its min F "
        "(left) comes closest to the learned one near the mu where the learned row norm a* (right) equals "
        "the frozen norm, "
        "and its c_2 (middle) keeps rising past mu_crit, where the learned optimum is trivial."),
}


def caption(name: str) -> str:
    """The caption of figure ``name``, or "" when it has none."""
    return CAPTIONS.get(name, "")
