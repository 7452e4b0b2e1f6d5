"""Reports from stored sweep records: Markdown, LaTeX (booktabs) and CSV tables, PNG and PDF
figures, and an index ``README.md`` with each regime's findings in numbers.

``render(src, out)`` only reads records (see :mod:`ufm.sweep`) and draws; it solves
nothing. ``regenerate(out, cache)`` runs every shipped spec into ``cache`` from scratch,
measures the example features file, then renders: what ``make report`` calls.
Wall times go to ``out/timings.md`` only; everything else is reproducible.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..sweep.grid import read_spec, shipped_specs
from ..sweep.records import read_records
from .figures import FIGURES, save
from .regimes import BUILDERS, stopping

ORDER = ("theorem", "phase", "dimension", "imbalance", "losses", "iterations")
GENERATED = ("tables", "figures", "README.md", "timings.md")
FEATURES_JSON = "features_example.json"


def _spec_text(name: str, src: Path) -> tuple[str, str]:
    for cand in (src / name / "spec.json", src / "spec.json"):
        if cand.exists():
            raw = json.loads(cand.read_text())
            if raw.get("name") == name:
                return str(raw.get("title", name)), str(raw.get("description", "")).strip()
    if name in shipped_specs():
        raw = read_spec(name)
        return str(raw.get("title", name)), " ".join(str(raw.get("description", "")).split())
    return name, ""


def render(src: str | Path, out: str | Path, *, features: dict | None = None) -> list[Path]:
    """Write tables, figures and ``README.md`` under ``out`` from the records under ``src``.

    Returns the files written. Regimes are recognised by spec name (the shipped ones);
    records of other specs are listed in the index with their cell counts.
    """
    src, out = Path(src), Path(out)
    if features is None and (src / FEATURES_JSON).exists():
        features = json.loads((src / FEATURES_JSON).read_text())
    recs = read_records(src)
    if not recs:
        raise FileNotFoundError(f"No sweep records under {src}; run `ufm sweep NAME --out {src}` first.")
    by_spec: dict[str, list] = defaultdict(list)
    for r in recs:
        by_spec[r["spec"]].append(r)
    out.mkdir(parents=True, exist_ok=True)
    for name in GENERATED:
        p = out / name
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    written: list[Path] = []
    sections = []
    for name in [n for n in ORDER if n in by_spec] + sorted(set(by_spec) - set(ORDER)):
        rs = by_spec[name]
        title, desc = _spec_text(name, src)
        lines = [f"## {title}", "", f"Spec `{name}` ({len(rs)} cells; `ufm sweep {name} --out DIR`). {desc}", ""]
        if name in BUILDERS:
            tables, findings = BUILDERS[name](rs)
            lines += ["Findings:", ""] + [f"- {f}" for f in findings] + [""]
            for t in tables:
                written += t.write(out / "tables")
                lines += [f"Table `{t.name}` ([md](tables/{t.name}.md), [tex](tables/{t.name}.tex), "
                          f"[csv](tables/{t.name}.csv)): {t.title}.", ""]
                if len(t.rows) <= 40:
                    lines += [t.markdown()] + ([t.note, ""] if t.note else [])
            for fname, fig in FIGURES[name](rs).items():
                written += save(fig, out / "figures", fname)
                lines += [f"![{fname}](figures/{fname}.png)", "",
                          f"Figure `{fname}` ([png](figures/{fname}.png), [pdf](figures/{fname}.pdf)).", ""]
        sections.append("\n".join(lines))
    if features is not None:
        sections.append(_features_section(features, out, written))
    head = ["# Reports", "",
            "Everything here is written by `make report` (`ufm report --regenerate`): every shipped spec",
            "is swept from scratch into `runs/report/`, then rendered. Re-render stored runs with",
            "`ufm report --from DIR --out reports`; load them yourself with `ufm.sweep.load(DIR)`.",
            "Symbols and formulas: [docs/theory.md](../docs/theory.md).", "",
            "What reproduces: every table (Markdown, LaTeX and CSV hold the same printed digits) and this file",
            "are the same, byte for byte, on another machine or with another BLAS thread count: residuals",
            "(gaps, NC metrics, angles) below 1e-8 print as `<1e-08` because their digits are rounding noise,",
            "other numbers print to 4 significant digits or fewer, far coarser than the solvers' accuracy,",
            "and iteration counts are to fixed thresholds far above rounding. The figures are byte-identical",
            "too for a given matplotlib and FreeType: no dates in their metadata, a fixed SVG hash salt,",
            "residuals drawn at the 1e-8 floor and the drawn data rounded on a fixed grid first. What may",
            "differ: `timings.md` (wall times, and the iteration at which each solver stopped, which rounding",
            "near its tolerance decides), and the figures' bytes under another matplotlib or FreeType version.",
            "Checked by regenerating everything with OpenBLAS's Haswell kernels (1 and 2 threads) and its",
            "Sandybridge kernels (`OPENBLAS_CORETYPE=Sandybridge`, which changes the rounding of every",
            "product): only `timings.md` differed.", "",
            "Contents: " + ", ".join(f"[{_spec_text(n, src)[0]}](#{_anchor(_spec_text(n, src)[0])})"
                                     for n in [n for n in ORDER if n in by_spec]), ""]
    index = out / "README.md"
    index.write_text("\n".join(head) + "\n" + "\n".join(sections).rstrip() + "\n")
    timings = out / "timings.md"
    timings.write_text(_timings(by_spec))
    return written + [index, timings]


def _anchor(title: str) -> str:
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return keep.replace(" ", "-")


def _features_section(feat: dict, out: Path, written: list[Path]) -> str:
    from .tables import Table

    m = feat["metrics"]
    rows = [{"metric": k, "value": m[k]} for k in ("nc1", "nc1_all", "nc2_w", "nc2_h", "nc3", "nc3_dual", "bias",
                                                   "decoding_accuracy", "norm_W", "norm_H")]
    for mm, tw in m["tagwise"].items():
        rows += [{"metric": f"tag-wise angle m={mm} (deg)", "value": tw["angle_deg"]},
                 {"metric": f"tag-wise scale m={mm} (predicted {tw['predicted_scale']:.4g})", "value": tw["scale"]}]
    if "certificate" in feat:
        rows += [{"metric": "F", "value": feat["objective"]["F"]},
                 {"metric": "certified lower bound", "value": feat["certificate"]["lower_bound"]},
                 {"metric": "certified relative gap", "value": feat["certificate"]["rel_gap"]}]
    t = Table("features_example", "ufm metrics examples/features_example.npz", [("metric", "metric", "s"),
                                                                               ("value", "value", "f")], rows)
    written += t.write(out / "tables")
    return "\n".join([
        "## Features of a trained network: `ufm metrics`", "",
        f"`examples/features_example.npz` ({feat['design']}, d = {feat['d']}) is a noisy near-collapsed UFM "
        "optimum standing in for a network's last layer (layout: `docs/metrics_npz.md`). "
        "`ufm metrics examples/features_example.npz --json` gives every metric of `docs/theory.md` and, with "
        "the weight decays stored in the file, the certificate:", "", t.markdown()])


def _timings(by_spec: dict[str, list]) -> str:
    lines = ["# Wall times (not reproducible; excluded from the comparison of regenerated reports)", "",
             "| spec | cells | total solve time (s) | slowest cell (s) |", "|---|---|---|---|"]
    for name, rs in sorted(by_spec.items()):
        ts = [r["timing"]["solve"] for r in rs]
        lines.append(f"| {name} | {len(rs)} | {sum(ts):.1f} | {max(ts):.2f} |")
    if "iterations" in by_spec:
        lines += ["", "Where each solver of the `iterations` spec stopped. Near its gradient tolerance the",
                  "decision to stop depends on rounding, so these counts may differ on another machine",
                  "(the report's table counts iterations to fixed thresholds instead).", "",
                  "| solver | status | iterations | final gradient norm |", "|---|---|---|---|"] + stopping(by_spec["iterations"])
    return "\n".join(lines) + "\n"


def regenerate(out: str | Path, cache: str | Path, *, jobs: int = 1, dask: Any = None,
               example: str | Path | None = None, progress: bool = True) -> list[Path]:
    """Sweep every shipped spec from scratch into ``cache/<name>``, then :func:`render`.

    With ``example``, the example features file is (re)written there and measured first.
    """
    from ..sweep.runner import run

    cache = Path(cache)
    shutil.rmtree(cache, ignore_errors=True)
    features = None
    if example is not None:
        from ..features import make_example, measure

        arrays = make_example(example)
        features = measure(arrays["W"], arrays["H"], arrays["b"], arrays["Y"], lam_W=arrays["lam_W"],
                           lam_H=arrays["lam_H"], lam_b=arrays["lam_b"])
        cache.mkdir(parents=True, exist_ok=True)
        (cache / FEATURES_JSON).write_text(json.dumps(features, indent=1, allow_nan=False) + "\n")
    t0 = time.perf_counter()
    for name in ORDER:
        stats = run(name, cache / name, jobs=jobs, dask=dask, progress=progress)
        if progress:
            print(f"  {stats.line()} [{time.perf_counter() - t0:.0f} s]", flush=True)
    return render(cache, out, features=features)
