"""The mutation table of ``make mutants``: per file, killed / survived / total, with the
mutants that only change a string literal (messages, statements, docstrings) left out.

Reads what ``mutmut run`` left under ``mutants/`` (the ``*.meta`` results and the mutated
sources, in which every mutant is a copy ``x_f__mutmut_N`` of the function ``x_f__mutmut_orig``).
A mutant is *string-only* when its function equals the original once every string
constant is blanked. Survivors are printed with the changed lines, for
tests/mutants_equivalent.md. Run: ``python tests/mutation_table.py [--survivors]``.
"""

from __future__ import annotations

import ast
import difflib
import json
import sys
from pathlib import Path

from mutmut.stats import status_by_exit_code  # the mutation extra

# mutmut's statuses folded into the table's columns (a crashed test run detects the mutant)
FOLD = {"segfault": "killed", "caught by type check": "killed", "suspicious": "timeout",
        "check was interrupted by user": "not checked"}


def _functions(src: str) -> dict[str, ast.AST]:
    out: dict[str, ast.AST] = {}
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in node.name:
            out[node.name] = node
    return out


class _Blank(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant("") if isinstance(node.value, str) else node


def _norm(fn: ast.AST, blank: bool) -> str:
    fn = ast.parse(ast.unparse(fn)).body[0]
    fn.name = "f"  # type: ignore[attr-defined]
    return ast.dump(_Blank().visit(fn) if blank else fn)


def table(root: Path = Path("mutants/ufm"), survivors: bool = False) -> list[str]:
    lines = ["| file | killed | survived | no tests | timeout | not checked | total (no strings) | string-only | score |",
             "|---|---|---|---|---|---|---|---|---|"]
    detail: list[str] = []
    for meta in sorted(root.rglob("*.py.meta")):  # subpackages too (ufm/objectives/)
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        src = meta.with_suffix("").read_text()
        funcs = _functions(src)
        counts = {k: 0 for k in ("killed", "survived", "no tests", "timeout", "not checked", "skipped")}
        strings = 0
        for key, code in codes.items():
            name = key.rsplit(".", 1)[-1]
            orig = funcs.get(name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
            mut = funcs.get(name)
            if orig is not None and mut is not None and _norm(orig, True) == _norm(mut, True):
                strings += 1
                continue
            status = status_by_exit_code[code]
            status = FOLD.get(status, status)
            counts[status] += 1
            if survivors and status == "survived" and orig is not None and mut is not None:
                a, b = ast.unparse(orig).splitlines()[1:], ast.unparse(mut).splitlines()[1:]
                diff = [d for d in difflib.unified_diff(a, b, lineterm="", n=0) if d[:1] in "+-" and d[:3] not in ("+++", "---")]
                detail.append(f"{key}: " + " | ".join(d.strip() for d in diff))
        total = sum(counts.values())
        checked = counts["killed"] + counts["survived"]
        score = f"{counts['killed'] / checked:.0%}" if checked else "-"
        lines.append(f"| {meta.relative_to(root).as_posix()[:-5]} | {counts['killed']} | {counts['survived']} | {counts['no tests']} | "
                     f"{counts['timeout']} | {counts['not checked']} | {total} | {strings} | {score} |")
    return lines + ([""] + detail if survivors else [])


if __name__ == "__main__":
    print("\n".join(table(survivors="--survivors" in sys.argv)))
