"""dtm_lite.hardware: the chip's cost formula on known inputs (the paper's Fashion-MNIST configuration, the codon
paper's worked examples), every assumption overridable and checked, the model-larger-than-chip refusal, the GPU
bracket, the CPU measurement, and generation's cache-sized chunks (the CPU column's rate)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig, sampling
from dtm_lite import hardware as hw

FASHION = DTMConfig(image_shape=(28, 28, 1), preset="70_12", num_diffusion_steps=8, generation_sweeps=800)
TINY = DTMConfig(image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=4, n_samples=2, generation_sweeps=4)


# ---------------------------------------------------------------------------------------------- the formula


def test_fashion_mnist_configuration_of_the_paper():
    """70x70 grid, T = 8, K = 800, 2 colours: E_samp = T K L² E_cell, t = T K c τ0, with the defaults."""
    c = hw.chip_cost(FASHION)
    assert (c.steps, c.sweeps, c.cells, c.read_bits, c.updates) == (8, 800, 4900, 784, 8 * 800 * 4900)
    assert c.sampling_j == pytest.approx(8 * 800 * 4900 * 2e-15) == pytest.approx(62.72e-9)
    assert c.sampling_s == pytest.approx(8 * 800 * 2 * 100e-9) == pytest.approx(1.28e-3)
    assert c.rng_j == pytest.approx(8 * 800 * 4900 * 350e-18)
    assert c.init_j == pytest.approx(8 * 4900 * 2e-15) and c.init_s == pytest.approx(8 * 100e-9)
    assert c.readout_j == pytest.approx(8 * 784 * 2e-15)
    assert c.energy_j == pytest.approx(c.sampling_j + c.init_j + c.readout_j)
    assert c.latency_s == pytest.approx(c.sampling_s + c.init_s)
    assert c.fits and c.preset == "70_12"
    d = c.as_dict()
    assert d["energy_j"] == c.energy_j and d["assumptions"]["e_cell"] == 2e-15 and d["updates"] == c.updates


def test_codon_paper_worked_examples():
    """Jelinčič & Walker (codon paper): 2·10⁴ sweeps of 3,147 spins at 1.3 fJ = 82 nJ (§2.3); 4 colours at ~100 ns
    make a ~400 ns Gibbs step, 8 ms for the run (§2.4); GPU bracket 20 mJ / 84 J (Ising) and 13 µJ (Potts)."""
    c = hw.grid_cost(1, 20_000, 3147, e_cell=1.3e-15, colours=4)
    assert c.sampling_j == pytest.approx(81.8e-9, rel=1e-3) and round(c.sampling_j * 1e9) == 82
    assert c.sampling_s == pytest.approx(8e-3) and c.preset is None and c.readout_j == 0.0
    low, high = hw.energy_bracket(2e9, 84.0 / 350.0, 350.0, 35.6e12)
    assert round(low * 1e3) == 20 and high == pytest.approx(84.0)
    assert round(hw.energy_bracket(1.3e6, 1.0, 350.0, 35.6e12)[0] * 1e6) == 13
    assert hw.RTX_3090.updates_per_s == pytest.approx(2e4 * 3147 / 0.24)


def test_shipped_model_cost_and_gpu_bracket():
    dtm = DTM.pretrained("lunarlander")
    c = hw.chip_cost(dtm)  # a DTM or its config
    assert c == hw.chip_cost(dtm.config)
    T, K, N = dtm.num_steps, dtm.config.generation_sweeps, dtm.graph.n_nodes
    assert c.updates == hw.updates_per_sample(dtm) == T * K * N
    assert c.sampling_j == pytest.approx(T * K * N * 2e-15) and c.sampling_s == pytest.approx(T * K * 2 * 100e-9)
    g = hw.gpu_bracket(dtm)
    flops = T * K * N * (2 * dtm.graph.degree + 1)
    assert g.flops == flops and g.updates == c.updates
    assert g.low_j == pytest.approx(flops / 35.6e12 * 350) and g.high_j == pytest.approx(
        c.updates / g.gpu.updates_per_s * 350
    )
    assert g.low_j < g.high_j and g.as_dict()["measured_here"] is False
    assert hw.gpu_bracket(dtm, flops_per_update=10).flops == T * K * N * 10
    other = hw.GPUFigure("x", tdp_w=100.0, peak_flops=1e12, updates_per_s=1e9, source="test")
    assert hw.gpu_bracket(dtm, other).high_j == pytest.approx(c.updates / 1e9 * 100)


# ---------------------------------------------------------------------------------------------- assumptions

DOUBLED = {"e_cell": "sampling_j", "e_rng": "rng_j", "e_init": "init_j", "e_read": "readout_j", "colours": "sampling_s"}


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(hw.Assumptions)])
def test_every_assumption_can_be_overridden(name):
    base = hw.chip_cost(FASHION)
    value = getattr(hw.Assumptions(), name) * 2
    for c in (hw.chip_cost(FASHION, **{name: value}), hw.chip_cost(FASHION, hw.Assumptions(**{name: value}))):
        assert getattr(c.assumptions, name) == value
        if name in DOUBLED:
            assert getattr(c, DOUBLED[name]) == pytest.approx(2 * getattr(base, DOUBLED[name]))
        elif name == "tau0":
            assert c.latency_s == pytest.approx(2 * base.latency_s)
        else:  # chip_cells: only whether it fits
            assert c.energy_j == base.energy_j
    assert name in hw.SOURCES and hw.SOURCES[name].where


def test_sources_say_which_figures_were_confirmed():
    rows = hw.Assumptions().table()
    assert [r["name"] for r in rows] == [f.name for f in dataclasses.fields(hw.Assumptions)]
    assert not hw.SOURCES["e_cell"].confirmed and "not confirmed" in hw.SOURCES["e_cell"].note
    assert rows[0]["confirmed_in"] == "" and rows[1]["confirmed_in"] == "codon paper §2.4"
    assert hw.SOURCES["chip_cells"].confirmed and "250,000" in hw.SOURCES["chip_cells"].where


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(hw.Assumptions)])
@pytest.mark.parametrize("bad", [0, -1, -2e-15, math.nan, math.inf, True, "2e-15", None])
def test_bad_assumptions_name_the_field(name, bad):
    with pytest.raises(ValueError, match=rf"assumption {name} must be (a finite number > 0|an integer >= 1)"):
        hw.chip_cost(FASHION, **{name: bad})
    with pytest.raises(ValueError, match=f"assumption {name}"):
        hw.Assumptions(**{name: bad})


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="assumption colours must be an integer >= 1, got 1.5"):
        hw.chip_cost(FASHION, colours=1.5)
    with pytest.raises(ValueError, match="e_rng .* is part of e_cell"):
        hw.chip_cost(FASHION, e_cell=1e-16)
    with pytest.raises(ValueError, match=r"unknown assumption\(s\) \['E_cell'\]; the assumptions are: e_cell"):
        hw.chip_cost(FASHION, E_cell=1e-15)
    with pytest.raises(TypeError, match="expected a DTMConfig or a DTM"):
        hw.chip_cost("70_12")
    with pytest.raises(ValueError, match="sweeps must be an integer >= 1"):
        hw.grid_cost(1, 0, 100)
    with pytest.raises(ValueError, match="read_bits must be an integer >= 0"):
        hw.grid_cost(1, 1, 100, read_bits=-1)
    for args in [(0, 1, 1, 1), (1, -1, 1, 1), (1, 1, math.inf, 1), (1, 1, 1, math.nan)]:
        with pytest.raises(ValueError, match="must be a finite number > 0"):
            hw.energy_bracket(*args)


def test_a_model_larger_than_the_chip_is_refused_with_what_fits():
    with pytest.raises(ValueError) as info:
        hw.chip_cost(FASHION, chip_cells=3000)
    msg = str(info.value)
    assert "preset 70_12 has 4,900 cells, more than a chip of chip_cells=3,000" in msg
    assert "side up to 54 (1,458 visible bits)" in msg and "the largest preset of degree 12 that fits is 50_12" in msg
    assert "check_fit=False" in msg
    priced = hw.chip_cost(FASHION, chip_cells=3000, check_fit=False)
    assert not priced.fits and priced.energy_j == hw.chip_cost(FASHION).energy_j
    assert hw.chip_cost(FASHION, chip_cells=4900).fits  # exactly full
    assert hw.fitting_presets(4900, 12)[-1] == "70_12" and "70_16" in hw.fitting_presets(4900)
    assert "no preset of degree 12 fits" in hw.what_fits(
        100, 12
    ) and "the largest of any degree is 8_8" in hw.what_fits(100, 12)
    for bad in (0, -5, 1.5):
        for ask in (hw.fitting_presets, hw.what_fits):
            with pytest.raises(ValueError, match="assumption chip_cells must be an integer >= 1"):
                ask(bad)


# ---------------------------------------------------------------------------------------------- this CPU


@pytest.fixture(scope="module")
def tiny():
    return DTM(TINY)


def test_measure_generation_counts_updates_and_energy(tiny, monkeypatch):
    monkeypatch.setattr(hw, "read_rapl", lambda: None)
    m = hw.measure_generation(tiny, 3, repeats=2, watts_per_core=5.0)
    assert m.n == 3 and m.updates == 3 * 1 * 4 * 400 and m.wall_s > 0 and m.cpu_s >= 0 and m.rapl_j is None
    assert m.energy_j == pytest.approx(m.cpu_s * 5.0) and "assumed" in m.energy_source
    assert m.updates_per_s == pytest.approx(m.updates / m.wall_s) and m.wall_s_per_sample == pytest.approx(m.wall_s / 3)
    assert hw.measure_generation(tiny, 2, repeats=1, sweeps=8).updates == 2 * 8 * 400
    counter = iter(range(0, 10**9, 10**6))  # 1 J between consecutive readings
    monkeypatch.setattr(hw, "read_rapl", lambda: {"pkg": next(counter)})
    m = hw.measure_generation(tiny, 1, repeats=1)
    assert m.rapl_j == pytest.approx(1.0) and m.energy_j == 1.0 and "RAPL" in m.energy_source
    assert m.as_dict()["energy_j_per_sample"] == 1.0
    with pytest.raises(ValueError, match="n and repeats must be integers >= 1"):
        hw.measure_generation(tiny, 0)
    with pytest.raises(ValueError, match="watts_per_core must be a finite number > 0"):
        hw.measure_generation(tiny, 1, watts_per_core=0.0)


def test_rapl_counter_wrap(tmp_path):
    domain = tmp_path / "intel-rapl:0"
    domain.mkdir()
    (domain / "max_energy_range_uj").write_text("1000000\n")
    path = str(domain / "energy_uj")
    assert hw._rapl_joules({path: 900_000}, {path: 100_000}) == pytest.approx(0.2)  # wrapped once
    assert hw._rapl_joules({path: 1}, None) is None and hw._rapl_joules(None, {path: 1}) is None


def test_generation_runs_in_cache_sized_chunks_on_cpu(tiny, monkeypatch):
    """At most GENERATE_CHUNK_CHAINS (128) chains a kernel call on CPU (512 overflow the L3 cache and run at half
    the rate), under the byte budget too; at most two chunk sizes; chunk i keyed fold_in(key, i)."""
    per_chain = tiny.generation_bytes_per_chain()
    assert sampling.GENERATE_CHUNK_CHAINS == 128 and all(d.platform == "cpu" for d in tiny.mesh.devices)
    assert sampling.chunk_chains(tiny, 1 << 30, 4, None) == 128
    assert sampling.chunk_chains(tiny, 1 << 30, 4, None, max_chains=512) == 512
    assert sampling.chunk_chains(tiny, 50 * per_chain, 4, None) == 50  # the budget still bounds
    calls = []

    def stub(params, key, betas, n):
        calls.append((n, tuple(np.asarray(jax.random.key_data(key)).tolist())))
        return jnp.zeros((n, 16), jnp.uint8), jnp.zeros((1, n, 16), jnp.int8)

    monkeypatch.setattr(tiny, "_kernels", {(4, 4, False): stub})
    key = jax.random.key(5)
    assert tiny.generate(300, key=key).shape == (300, 4, 4, 1)
    assert [n for n, _ in calls] == [100, 100, 100]
    assert [k for _, k in calls] == [
        tuple(np.asarray(jax.random.key_data(jax.random.fold_in(key, i))).tolist()) for i in range(3)
    ]
    calls.clear()
    tiny.generate(300, key=key, max_chunk_chains=300)  # one chunk: exactly the single run with key
    assert [n for n, _ in calls] == [300] and calls[0][1] == tuple(np.asarray(jax.random.key_data(key)).tolist())
    with pytest.raises(ValueError, match="max_chunk_chains must be an integer >= 1"):
        tiny.generate(2, key=0, max_chunk_chains=0)


def test_sample_cost_benchmark_writes_its_json(tmp_path):
    """benchmarks/sample_cost.py at its smallest: the three columns and the command land in the JSON."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "cost.json"
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "sample_cost.py"
    proc = subprocess.run([sys.executable, str(script), "--n", "2", "--repeats", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["command"] == f"python benchmarks/sample_cost.py --n 2 --repeats 1 --out {out}"
    assert res["cpu_batch"]["n"] == 2 and res["cpu_batch"]["updates"] == 2 * 400 * 6400
    assert res["chip"]["energy_j"] == pytest.approx(hw.chip_cost(DTM.pretrained("lunarlander")).energy_j)
    assert res["gpu"]["measured_here"] is False and res["fashion_mnist"]["chip"]["cells"] == 4900
    assert "spin updates/s" in proc.stdout and "not measured here" in proc.stdout
