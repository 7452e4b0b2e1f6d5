"""Reports from stored sweep records: Markdown, LaTeX (booktabs) and CSV tables, PNG and PDF
figures, and an index ``README.md`` with each regime's findings in numbers.

``render(src, out)`` only reads records (see :mod:`ufm.sweep`) and draws; it solves
nothing. ``regenerate(out, cache)`` runs every shipped spec into ``cache`` from scratch,
measures the example features file, then renders: what ``make report`` calls.
Wall times go to ``out/timings.md`` only; everything else is reproducible.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..exceptions import UFMError
from ..sweep.grid import read_spec, shipped_specs
from ..sweep.records import scan
from . import networks as _networks  # noqa: F401  (registers the networks section)
from .captions import caption
from .figures import FIGURES, save
from .regimes import BUILDERS, stopping

ORDER = ("theorem", "phase", "dimension", "imbalance", "losses", "iterations", "fixed", "minority", "conjecture",
         "deadclass", "networks")
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
    from ..files import DirLock, OutputDir

    src, final = Path(src), Path(out)
    OutputDir(final, "report", create=False)  # the output is checked first
    if not src.is_dir():
        raise UFMError(f"--from: no folder {src}; give a folder of sweep records (`ufm sweep NAME --out DIR`).")
    for lock in sorted(src.glob(".ufm-lock")) + sorted(src.glob("*/.ufm-lock")):
        DirLock(lock.parent).check()  # a sweep still writing there: its records are incomplete
    if features is None and (src / FEATURES_JSON).exists():
        try:
            features = json.loads((src / FEATURES_JSON).read_text())
        except (OSError, ValueError):
            features = None
    found = scan(src)
    recs = found.records
    if not recs:
        raise UFMError(f"No readable sweep records under {src} ({len(found.invalid)} corrupt, "
                       f"{len(found.failed)} failed); run `ufm sweep NAME --out {src}` first.")
    skipped = [f"{f} (corrupt or partial record)" for f in found.invalid] + [
        f"{r['key']}.json of spec {r['spec']} (the cell failed: {r['failed']['type']}: {r['failed']['message']})"
        for r in found.failed]
    by_spec: dict[str, list] = defaultdict(list)
    for r in recs:
        by_spec[r["spec"]].append(r)
    folder = OutputDir(final, "report")
    with DirLock(final, "ufm report"):
        out = Path(tempfile.mkdtemp(prefix=".ufm-staging-", dir=final))  # rendered here, then moved
        try:
            _render_into(out, src, by_spec, features, skipped)
            return Rendered(_publish(folder, out), skipped)
        finally:
            shutil.rmtree(out, ignore_errors=True)  # our own staging folder


class Rendered(list):
    """The files :func:`render` wrote, with ``skipped``: records it could not use (and why)."""

    def __init__(self, files: list[Path], skipped: list[str]) -> None:
        super().__init__(files)
        self.skipped = skipped


def _publish(folder: Any, stage: Path) -> list[Path]:
    """Move every staged file into place (checked first: nothing partial), list it, drop stale ones."""
    new = sorted(str(q.relative_to(stage)) for q in stage.rglob("*") if q.is_file())
    for rel in new:
        folder.check_target(rel)  # a file not ours in the way stops everything before any move
    for rel in new:
        folder.makedirs(Path(rel).parent)
        target = folder.check_target(rel)  # again, just before the move: no link on the way
        folder.adopt(rel)
        os.replace(stage / rel, target)
    folder.save()
    stale = [f for f in folder.files if f not in new and f != ".ufm-lock"]
    for rel in stale:
        folder.remove(rel)  # a listed regular file only; never through a link
    folder.adopt(".ufm-lock")
    folder.save()
    return [folder.path / rel for rel in new]


def _render_into(out: Path, src: Path, by_spec: dict[str, list], features: dict | None,
                 skipped: list[str]) -> list[Path]:
    written: list[Path] = []
    sections = []
    for name in [n for n in ORDER if n in by_spec] + sorted(set(by_spec) - set(ORDER)):
        rs = by_spec[name]
        title, desc = _spec_text(name, src)
        lines = [f"## {title}", "", f"Spec `{name}` ({len(rs)} cells; `ufm sweep {name} --out DIR`). {desc}", ""]
        if name in BUILDERS:
            try:
                lines += _section(name, rs, out, written, skipped)
            except OSError:  # a full disk, a vanished folder: the environment, not the records (exit 2)
                raise
            except Exception as exc:  # noqa: BLE001 - an incomplete sweep must not stop the rest
                skipped.append(f"section {name!r} ({len(rs)} records): {type(exc).__name__}: {exc}")
                lines += [f"This section could not be rendered from the {len(rs)} records found "
                          f"({type(exc).__name__}); is the sweep complete?", ""]
        sections.append("\n".join(lines))
    if skipped:
        sections.append("\n".join(["## Skipped records", "",
                                   f"{len(skipped)} item(s) could not be used; everything above is rendered "
                                   "without them:", ""] + [f"- {x}" for x in skipped]))
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
            "and iteration counts are to fixed thresholds far above rounding. The example features file",
            "`examples/features_example.npz` is the same byte for byte too: its solved point is rounded to",
            "1e-6 before the noise is added (checked by a test that moves the solver's last digits).",
            "The figures carry no dates in their metadata and a fixed SVG hash salt, residuals are drawn at",
            "the 1e-8 floor and the drawn data are rounded on a fixed grid first, so they are usually",
            "byte-identical for a given matplotlib and FreeType, but not always: a value that falls on the",
            "edge of the grid can round either way (`dimension_geometry.pdf` once changed: its arrows were",
            "drawn unrounded; they are rounded now, and two fresh regenerations on one machine agreed).",
            "What may differ: `timings.md` (wall times, and the iteration at which each solver stopped,",
            "which rounding near its tolerance decides), a figure's bytes now and then, and every figure's",
            "bytes under another matplotlib or FreeType version. Checked by regenerating everything with",
            "OpenBLAS's Haswell kernels (1 and 2 threads) and its Sandybridge kernels",
            "(`OPENBLAS_CORETYPE=Sandybridge`, which changes the rounding of every product): only",
            "`timings.md` differed that time.", "",
            "Contents: " + ", ".join(f"[{_spec_text(n, src)[0]}](#{_anchor(_spec_text(n, src)[0])})"
                                     for n in [n for n in ORDER if n in by_spec]), ""]
    index = out / "README.md"
    index.write_text("\n".join(head) + "\n" + "\n".join(sections).rstrip() + "\n")
    timings = out / "timings.md"
    timings.write_text(_timings(by_spec))
    return written + [index, timings]


def _section(name: str, rs: list, out: Path, written: list[Path], skipped: list[str]) -> list[str]:
    lines: list[str] = []
    tables, findings = BUILDERS[name](rs)
    lines += ["Findings:", ""] + [f"- {f}" for f in findings] + [""]
    for t in tables:
        written += t.write(out / "tables")
        lines += [f"Table `{t.name}` ([md](tables/{t.name}.md), [tex](tables/{t.name}.tex), "
                  f"[csv](tables/{t.name}.csv)): {t.title}.", ""]
        if len(t.rows) <= 40:
            lines += [t.markdown()] + ([t.note, ""] if t.note else [])
    try:  # a figure that cannot be drawn from the records found costs the figure, not the tables
        figures = FIGURES[name](rs)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - listed in the index, the exit status is 1
        skipped.append(f"the figures of section {name!r} ({len(rs)} records): {type(exc).__name__}: {exc}")
        figures = {}
        lines += [f"The figures of this section could not be drawn from the {len(rs)} records found "
                  f"({type(exc).__name__}); is the sweep complete?", ""]
    for fname, fig in figures.items():
        written += save(fig, out / "figures", fname)
        text = caption(fname)
        lines += [f"![{fname}](figures/{fname}.png)", "",
                  f"Figure `{fname}` ([png](figures/{fname}.png), [pdf](figures/{fname}.pdf))"
                  + (f": {text}" if text else "."), ""]
    return lines


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
               example: str | Path | None = None, progress: bool = True, fresh: bool = False) -> list[Path]:
    """Sweep every shipped spec into ``cache/<name>`` (resuming what is stored), then :func:`render`.

    ``fresh=True`` first removes the records this package stored in ``cache`` (only the
    files its manifests list: anything else there is never touched) so every cell is
    computed again. With ``example``, the example features file is (re)written there and
    measured first. Both folders are checked before any work.
    """
    from ..files import DirLock, OutputDir, check_output_file
    from ..sweep.runner import run

    cache = Path(cache)
    OutputDir(out, "report", create=False)  # checked now, written at the end
    if example is not None:
        check_output_file(example, "--example")
    root = OutputDir(cache, "report-cache", what="--cache")
    if fresh:
        with DirLock(cache, "ufm report --fresh"):
            for name in ORDER:
                sub = cache / name
                if sub.is_dir():
                    with DirLock(sub, "ufm report --fresh"):
                        OutputDir(sub, "sweep", what="--cache").remove_listed(
                            keep=(".ufm-lock", ".ufm-manifest.json"))
            root.remove_listed(keep={".ufm-lock"} | {f for f in root.files if f.split("/")[0] in ORDER})
    features = None
    if example is not None:
        from ..features import make_example, measure

        arrays = make_example(example)
        features = measure(arrays["W"], arrays["H"], arrays["b"], arrays["Y"], lam_W=arrays["lam_W"],
                           lam_H=arrays["lam_H"], lam_b=arrays["lam_b"])
        root.write(FEATURES_JSON, json.dumps(features, indent=1, allow_nan=False) + "\n")
    t0 = time.perf_counter()
    failed = 0
    for name in ORDER:
        stats = run(name, cache / name, jobs=jobs, dask=dask, progress=progress)
        failed += stats.failed
        if progress:
            print(f"  {stats.line()} [{time.perf_counter() - t0:.0f} s]", flush=True)
    return render(cache, out, features=features)
