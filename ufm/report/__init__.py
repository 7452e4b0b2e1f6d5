"""Reports from stored sweep records: tables (Markdown, LaTeX, CSV), figures (PNG, PDF) and
an index ``README.md`` with each regime's findings in numbers.

- :mod:`ufm.report.render` -- :func:`render` (records to files) and :func:`regenerate`
  (sweep every shipped spec, then render: what ``make report`` runs);
- :mod:`ufm.report.regimes` -- per-regime tables and the findings computed from them;
- :mod:`ufm.report.tables` -- the table type and number formatting;
- :mod:`ufm.report.figures` -- the figures.
"""

from .render import regenerate, render

__all__ = ["render", "regenerate"]
