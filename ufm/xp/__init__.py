"""L-BFGS and the certificate on any array library (the Python array API standard).

:mod:`.lbfgs`: a plain L-BFGS written once against the objective protocol
(:class:`ufm.objectives.Objective`; the array-API objective is :mod:`ufm.objectives.array_api`,
so numpy, ``array-api-strict``, JAX, CuPy and PyTorch arrays run the same code);
:mod:`.certificate`: the certificate's pass over the logits in any namespace; :mod:`.devices`:
``"cpu"`` / ``"cuda"`` to an array namespace. ``ufm.solve(p, device=...)`` drives them
(:mod:`ufm.solvers.device`). numpy's own path (:mod:`ufm.objectives.grouped`,
:mod:`ufm.solvers.lbfgs`) stays the default.
"""
