"""``python -m benchmarks.gpu`` on the CPU with a tiny problem: the table, the machine's
description, the skipped PyTorch rows, and the one-line refusal without a GPU."""

from __future__ import annotations

import pytest

from benchmarks import gpu


def test_the_gpu_bench_runs_on_the_cpu_and_writes_its_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu, "torch_available", lambda: "PyTorch not installed (pip install torch)")
    assert gpu.main(["--device", "cpu", "--tiny", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "bench_gpu.md").read_text()
    assert "- host: " in text and "device asked: cpu" in text
    row = next(line for line in text.splitlines() if line.startswith("| ufm array-API path on the CPU"))
    cert = float(row.split("|")[6])
    assert 0 <= abs(cert) <= 1e-6  # the package's answer is certified
    assert text.count("skipped: PyTorch not installed") == 3
    assert "its three GEMMs" in text and "ratio **" in text


@pytest.mark.slow  # importing PyTorch takes seconds (and CI does not install it)
def test_the_pytorch_rows_reach_the_target_where_pytorch_is_installed(tmp_path):
    pytest.importorskip("torch")
    p = gpu.SIZES["tiny"].problem()
    r = gpu.torch_row(p, "cpu", "lbfgs", history=10, budget=30.0)
    assert r["reached"] and 0 <= r["rel"] <= 1e-6 and r["cert"] <= 1e-5


def test_without_a_gpu_the_cuda_bench_is_one_line_exit_2(tmp_path, capsys):
    from ufm.exceptions import UFMError
    from ufm.xp.devices import namespace

    try:
        namespace("cuda")
    except UFMError:
        pass
    else:
        pytest.skip("a GPU is present")
    assert gpu.main(["--tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no GPU array library" in err[0]
    assert not (tmp_path / "bench_gpu.md").exists()
