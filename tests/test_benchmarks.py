"""The benchmark scripts run on small inputs; their built-in checks compare every method with numpy."""

from benchmarks import hamming


def test_hamming_benchmark_runs_and_checks_outputs():
    rows = hamming.main(["--n", "20000", "--m", "50", "--sigma", "4", "300", "--repeats", "1", "--long-m", "3000"])
    assert [r["m"] for r in rows] == [50, 50, 3000]
    assert all(r["approx_max_rel_err"] <= 0.1 for r in rows)
