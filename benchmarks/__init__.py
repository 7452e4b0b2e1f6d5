"""``make bench`` (``python -m benchmarks``): time to a certified global optimum, against
the UFM literature's plain gradient descent measured in the same run.

Modules:

- :mod:`benchmarks.ladder` -- the size ladder (S, M, L, and W: d >> K) and the solvers compared;
- :mod:`benchmarks.tracker` -- one timed solver run: first time/evaluations at which the
  relative gap to the theory value and the certified gap reach their targets, with the
  certificate's own cost excluded from the solver's time;
- :mod:`benchmarks.gd_grid` -- the best fixed GD step from a grid, then its full run;
- :mod:`benchmarks.evaluation` -- one objective-and-gradient evaluation against the three
  matrix products it needs;
- :mod:`benchmarks.convex_scaling` -- the largest K the cvxpy relaxation solves in 60 s;
- :mod:`benchmarks.blas` -- BLAS thread control (OpenBLAS of numpy and scipy);
- :mod:`benchmarks.output` -- the tables (``reports/bench.md``, ``reports/bench.csv``).

Wall times depend on the machine and on its load; every comparison is a ratio of
measurements taken side by side in one run.
"""
