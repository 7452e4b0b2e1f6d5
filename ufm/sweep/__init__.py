"""Parameter sweeps: grids of problems, run in parallel, one stored record per cell.

>>> from ufm import sweep
>>> sweep.run("theorem", "runs/theorem", jobs=2)          # doctest: +SKIP
>>> df = sweep.load("runs/theorem")                        # doctest: +SKIP

- :mod:`ufm.sweep.grid` -- specs (TOML/JSON) expanded into cells, each with a stable key;
- :mod:`ufm.sweep.runner` -- :func:`run`: compute every pending cell (in-process, joblib, Dask);
- :mod:`ufm.sweep.records` -- one atomic, checksummed JSON record per cell; :func:`load`;
- ``ufm/sweep/specs/`` -- the shipped specs (``ufm sweep --list``).
"""

from .grid import Spec, load_spec, shipped_specs
from .records import load, read_record, read_records
from .runner import VOLATILE, SweepStats, compute_cell, run

__all__ = ["run", "load", "read_records", "read_record", "compute_cell", "load_spec",
           "shipped_specs", "Spec", "SweepStats", "VOLATILE"]
