"""The benchmark scripts run on small inputs; their built-in checks compare every method with numpy."""

import argparse
import json

import numpy as np
import pytest
from benchmarks import hamming


def test_hamming_benchmark_runs_and_checks_outputs():
    rows = hamming.main(["--n", "20000", "--m", "50", "--sigma", "4", "300", "--repeats", "1", "--long-m", "3000"])
    assert [r["m"] for r in rows] == [50, 50, 3000]
    assert all(r["approx_max_rel_err"] <= 0.1 for r in rows)


def test_optimal_transport_benchmark_runs_and_keeps_k():
    from benchmarks import optimal_transport

    rows = optimal_transport.main(["--n", "60", "--k", "1", "3", "--repeats", "1"])
    assert [r["k"] for r in rows] == [1, 3]
    assert all(r["nmkit_nnz"] <= r["k"] and r["nmkit500_nnz"] <= r["k"] for r in rows)


def test_relax_sor_benchmark_runs_and_checks_sweeps_against_references():
    from benchmarks import relax_sor

    result = relax_sor.main(["--steps", "20", "--heat-n", "6", "--heat-steps", "10", "--sides", "8"])
    assert result["throughput"][0]["side"] == 8 and len(result["rows"]) >= 10


def test_compress_pc_benchmark_runs_and_round_trips():
    from benchmarks import compress_pc

    rows = compress_pc.main(["--data", "digits", "--set", "latents", "2", "--set", "minibatch_epochs", "1",
                             "--set", "full_batch_epochs", "1"])["digits"]
    measured = {row["method"]: row.get("bpd") for row in rows}
    assert measured["nmkit HCLT (latents=2; 1+1 EM epochs)"] < measured["uniform (ideal)"] == np.log2(17)
    assert measured["lzma -9e"] < measured["uniform (ideal)"]
    assert measured["Chow-Liu tree over pixels (ideal)"] < measured["independent pixels (ideal)"]


def test_attack_benchmark_runs_and_checks_the_qp():
    from benchmarks import attack

    result = attack.main(["--count", "10", "--k", "1", "--budgets", "1x20", "--architectures", "mlp",
                          "--qp", "8", "12", "12", "3"])
    assert result["qp"]["violation"] <= 1e-6 and len(result["rows"]) == 1


def test_prune_benchmark_runs_every_method_and_measures_the_call():
    from benchmarks import prune

    result = prune.main(["--seeds", "0", "--sparsities", "0.9", "--architectures", "mlp", "--fine-tune", "0",
                         "--width", "256", "--depth", "2"])
    assert {r["method"] for r in result["accuracy"]} == set(prune.METHODS)
    assert all(abs(r["sparsity"] - 0.9) < 2e-3 for r in result["accuracy"] if r["method"] != "sap")
    assert result["call"]["nmkit"]["extra_peak_mb"] >= 0 and len(result["latency"]) == 6


def test_solve_linear_benchmark_runs_every_method():
    from benchmarks import solve_linear

    result = solve_linear.main(["--sizes2d", "16", "24", "--sizes3d", "--obstacle-sizes", "--steps", "40",
                                "--tols", "1e-4", "--aniso-side", "30"])
    assert len(result["rows"]) == 2
    assert all(s["converged"] for r in result["rows"] for s in r["solves"].values())
    real = {r["system"]: r["solves"] for r in result["real"]}
    assert len(real) == 4 and "dcdm" not in real["airfoil (PyAMG)"] and "dcdm" in real["anisotropic eps 1e-3 30^2"]
    assert all(s["converged"] and s["true_relative_residual"] <= 1e-8 for solves in real.values()
               for method, s in solves.items() if method != "dcdm")


def test_robust_opt_benchmark_scores_every_answer_exactly():
    from benchmarks import robust_opt

    result = robust_opt.main(["--sizes", "6", "--cb-sizes", "5", "--cb-count", "1", "--h", "40", "--seeds", "1",
                              "--correlations", "UN", "--sample", "3", "--decisions", "3", "--scenarios", "4",
                              "--workers", "1", "--epochs", "5", "--embed", "8", "4", "--post", "8", "4",
                              "--value", "4", "--time-limit", "30"])
    for problem in ("knapsack", "capital_budgeting"):
        row = result[problem]["rows"][0]
        for key in ("ml_milp_error", "ml_pga_error", "ml_exact_error", "nominal_error"):
            assert row[key] >= -1e-9  # nothing beats the exact optimum


def test_train_snn_benchmark_runs_every_arm_on_the_same_budget():
    from benchmarks import train_snn

    result = train_snn.main(["--steps", "2", "--chars", "20000", "--ctx", "16", "--d-model", "16", "--layers", "1",
                             "--batch-size", "4", "--generate", "5"])
    rows = {r["arm"]: r for r in result["rows"]}
    assert set(rows) == {"default", "spikegpt", "rwkv", "gru", "snntorch"}
    assert rows["spikegpt"]["parameters"] == rows["rwkv"]["parameters"] == rows["snntorch"]["parameters"]
    assert abs(rows["gru"]["parameters"] / rows["spikegpt"]["parameters"] - 1) < 0.2
    assert set(result["ratios"]) == {"bpc_vs_twin", "paper_bpc_vs_twin", "throughput_vs_snntorch"}


def test_gpu_check_dry_run_resolves_every_step(tmp_path):
    from benchmarks import gpu_check

    report = gpu_check.main(["--dry-run", "--out", str(tmp_path / "gpu.json")])
    statuses = {name: step["status"] for name, step in report["steps"].items()}
    assert set(statuses) == {step.name for step in gpu_check.STEPS}
    assert all(status.startswith("would") for status in statuses.values()), statuses
    assert json.loads((tmp_path / "gpu.json").read_text())["dry_run"] is True


def test_snn_curve_logs_each_arm_resumes_from_its_checkpoint_and_plots_the_ratio(tmp_path):
    from benchmarks import snn_curve

    tiny = ["--ctx", "16", "--batch-size", "2", "--eval-every", "1", "--eval-windows", "2"]
    for arm in ("default", "rwkv"):
        snn_curve.main(["run", "--arm", arm, "--steps", "2", *tiny, "--log", str(tmp_path / f"{arm}.jsonl")])
    snn_curve.main(["run", "--arm", "default", "--steps", "3", *tiny, "--log", str(tmp_path / "default.jsonl")])
    spiking = [json.loads(line) for line in (tmp_path / "default.jsonl").read_text().splitlines()]
    twin = [json.loads(line) for line in (tmp_path / "rwkv.jsonl").read_text().splitlines()]
    assert [r["step"] for r in spiking] == [1, 2, 3] and [r["step"] for r in twin] == [1, 2]
    summary = snn_curve.plot(argparse.Namespace(logs=[str(tmp_path / "default.jsonl"), str(tmp_path / "rwkv.jsonl")],
                                                out=str(tmp_path / "bpc_ratio.svg")))
    (only,) = summary.values()
    assert only["last_step"] == 2 and only["ratio"] == pytest.approx(spiking[1]["valid_bpc"] / twin[1]["valid_bpc"])
    assert (tmp_path / "bpc_ratio.svg").read_text().startswith("<svg")
    (tested,) = snn_curve.test(argparse.Namespace(logs=[str(tmp_path / "rwkv.jsonl")], ctx=16, threads=1)).values()
    assert tested["step"] == 2 and 0 < tested["test_bpc"] < 8


def test_scale_out_benchmark_runs_every_arm(tmp_path):
    import shutil

    from benchmarks import scale_out

    pytest.importorskip("distributed")
    instances = tmp_path / "instances"
    instances.mkdir()
    for name in sorted(p.name for p in scale_out.KNAPSACK.iterdir())[:2] if scale_out.KNAPSACK.is_dir() else []:
        shutil.copy(scale_out.KNAPSACK / name, instances / name)
    if not any(instances.iterdir()):
        (instances / "kp.txt").write_text("2 10 1\n5 1 1 3 1\n4 1 1 3 1\n")
    result = scale_out.main(["--instances", str(instances), "--time-limit", "1", "--n", "20000", "--patterns", "12",
                             "--sample", "2", "--task-sizes", "0.05", "--tasks", "2"])
    assert set(result["robust_opt"]["walls"]) == {"local:1", "local:2", "dask, 2 workers"}
    assert set(result["hamming"]["calls"]) == {"k-mismatch", "exact top-10", "k-mismatch, dask"}
    assert result["collection"]["solves"] > 0 and result["estimate_504_on_64_seconds"] > 0
