"""The objective and L-BFGS on any array library (the Python array API standard).

:mod:`.protocol`: what a solver needs of an objective (value and gradient, Hessian-vector
product, packing, embedding back to ``(W, H, b)``); :mod:`.objective`: the full and the
grouped ``F`` written against ``array-api-compat``, so numpy, ``array-api-strict``, JAX,
CuPy and PyTorch arrays run the same code; :mod:`.lbfgs`: a plain L-BFGS written once
against the protocol; :mod:`.devices`: ``"cpu"`` / ``"cuda"`` to an array namespace.
``ufm.solve(p, device=...)`` drives them (:mod:`ufm.solvers.device`). numpy's own path
(:mod:`ufm.objective`, :mod:`ufm.grouped`, :mod:`ufm.solvers.lbfgs`) stays the default.
"""
