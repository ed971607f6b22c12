"""The kernel's unrolled networks (_networks.h, generated at build time) are the engine's networks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ccdgui.model import combine, networks
from ccdgui.model.combine import CombineOptions

NETWORKS_PY = Path(networks.__file__)
FUNCTION = re.compile(r"static void (sort|median)_(\d+)\(Block v\)\n\{\n(.*?)\n\}", re.S)


def _parse(header: str) -> dict[tuple[str, int], list[tuple[int, int]]]:
    found = {}
    for kind, n, body in FUNCTION.findall(header):
        found[(kind, int(n))] = [(int(i), int(j)) for i, j in re.findall(r"CX\(r(\d+), r(\d+)\);", body)]
    return found


def test_generated_header_has_the_engines_networks():
    header = networks.c_header()
    found = _parse(header)
    assert set(found) == {(kind, n) for kind in ("sort", "median") for n in range(2, 33)}
    for n in range(2, 33):
        assert found[("sort", n)] == list(combine.sorting_network(n)), n
        middle = tuple(sorted({(n - 1) // 2, n // 2}))
        assert found[("median", n)] == [(i, j) for i, j, _, _ in combine.selection_network(n, middle)], n
    assert "#define UNROLLED_MAX 32" in header
    table = ", ".join(f"sort_{n}" for n in range(2, 33))
    assert f"SORTS[UNROLLED_MAX + 1] = {{NULL, NULL, {table}}};" in header


def test_header_written_by_path_without_numpy_or_the_package(tmp_path):
    """setup.py loads networks.py by file path in a bare build environment: it must need nothing else."""
    out = tmp_path / "gen" / "_networks.h"
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('n', {str(NETWORKS_PY)!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            f"m.write_header({str(out)!r})\n"
            "bad = [k for k in sys.modules if k.split('.')[0] in ('numpy', 'ccdgui')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-I", "-c", code], check=True, timeout=60)
    assert out.read_text() == networks.c_header()
    before = out.stat().st_mtime_ns
    networks.write_header(out)  # unchanged text: file left alone (no needless recompile)
    assert out.stat().st_mtime_ns == before


def test_no_committed_header_in_the_source_tree():
    """_networks.h is a build product: generated into the build tree, never next to _stack.c."""
    assert not (NETWORKS_PY.parent / "_networks.h").exists()


@pytest.mark.parametrize("method, reject", [("median", "none"), ("average", "minmax")])
def test_compiled_unrolled_networks_sort_like_numpy(method, reject):
    """Every unrolled size (2..32) through the compiled kernel equals the numpy networks exactly."""
    if combine._stack is None:
        pytest.skip("the compiled kernel was not built here (no C compiler at install time)")
    options = CombineOptions(method=method, reject=reject, minmax_low=1, minmax_high=1)
    rng = np.random.default_rng(7)
    sizes = [n for n in range(2, 33) if combine._compiled_applies(n, options)]
    assert len(sizes) >= 28
    for n in sizes:
        cube = rng.normal(100, 10, (n, 3, 37)).astype(np.float32)
        cube[:, 0, :4] = 5.0  # ties
        data, count = combine._reduce_compiled(list(cube), None, options)
        expected, expected_count = combine._reduce_sorted_band(cube.copy(), options)
        np.testing.assert_array_equal(data, expected, err_msg=f"n={n}")
        np.testing.assert_array_equal(count, expected_count, err_msg=f"n={n}")
