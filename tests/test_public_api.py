"""What a newcomer sees first: `dir(ufm)` lists the public names only; a status prints its name."""

from __future__ import annotations

import ufm
from ufm.result import Status


def test_dir_lists_the_public_names_only():
    names = dir(ufm)
    assert names == sorted(ufm.__all__)
    for private in ("annotations", "sys", "types", "Any", "import_module", "TYPE_CHECKING"):
        assert private not in names


def test_a_status_prints_its_name_and_keeps_its_code():
    s = Status.MAX_ITER
    assert str(s) == f"{s}" == "MAX_ITER" and f"{s:>10}" == "  MAX_ITER"
    assert int(s) == -1 and s == -1 and s < 0
