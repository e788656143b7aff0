"""The README's headline ratios the way a user meets them: the `nmkit` command as a whole process against the peer
run as a plain Python script on the same input files, each timed from process start to exit (median of
``--repeats`` after a warm-up run that fills numba's cache). The in-process ratio quoted beside each is the one the
capability's own benchmark measures (README); where the two differ, start-up is where the time goes.

    python -m benchmarks.whole_process [--repeats 3] [--only hamming ot ...]

Peers that are not installed are reported as skipped. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.harness import print_table

NMKIT = [sys.executable, "-c", "from nmkit.cli.app import main; main()"]


@dataclass(frozen=True)
class Case:
    name: str
    workload: str
    in_process: str  # the README's in-process ratio for the same comparison
    peer_package: str | None


CASES = {
    "hamming": Case("hamming", "n = 10^6 text, |S| = 26, m = 1000 pattern (files)", "28.7x vs numpy", None),
    "ot": Case("optimal-transport", "1000 x 1000 Gaussian points (.npy), k = 2, gamma 0.1", "19-41x vs POT", "ot"),
    "prune": Case("prune", "TorchScript MLP 64-1024-1024-1024-10 (2.2M weights), global magnitude 90%",
                  "38x vs torch.nn.utils.prune (call only)", None),
    "compress-pc": Case("compress-pc", "encode the 400 digits test images with a trained HCLT (K = 32)",
                        "~50,000 images/s (encode, K = 16)", None),
    "relax-sor": Case("relax-sor", "20 shifted 2-D Laplacians 64^2 (.mtx + .npy), SOR omega 1.5 to rtol 1e-8",
                      "8-16x vs PyAMG sweeps", "pyamg"),
}


def _write_inputs(folder: Path) -> None:
    rng = np.random.default_rng(0)
    (folder / "text.txt").write_bytes(rng.integers(97, 123, 1_000_000, dtype=np.uint8).tobytes())
    (folder / "pattern.txt").write_bytes(rng.integers(97, 123, 1000, dtype=np.uint8).tobytes())
    np.save(folder / "x.npy", rng.normal(size=(1000, 2)))
    np.save(folder / "y.npy", rng.normal(loc=2.0, size=(1000, 2)))
    import scipy.sparse

    side = 64
    lap1 = scipy.sparse.diags([-1, 2, -1], [-1, 0, 1], shape=(side, side))
    eye = scipy.sparse.identity(side)
    lap = (scipy.sparse.kron(lap1, eye) + scipy.sparse.kron(eye, lap1)).tocsr()
    import scipy.io

    (folder / "sequence").mkdir()
    for t in range(20):
        scipy.io.mmwrite(folder / "sequence" / f"A_{t}.mtx", lap + rng.uniform(0, 0.5) * scipy.sparse.identity(side**2))
        np.save(folder / "sequence" / f"b_{t}.npy", rng.normal(size=side * side))


def _prepare_models(folder: Path) -> None:
    """A TorchScript model for prune, a trained HCLT and the digits test images for compress-pc."""
    script = f"""
        import numpy as np, torch
        from sklearn.datasets import load_digits
        torch.manual_seed(0)
        layers = [torch.nn.Flatten(), torch.nn.Linear(64, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024),
                  torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10)]
        torch.jit.save(torch.jit.script(torch.nn.Sequential(*layers)), {str(folder / "model.ts")!r})
        digits = load_digits().data.astype(np.uint8)
        np.save({str(folder / "digits_test.npy")!r}, digits[-400:])
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True)
    subprocess.run([*NMKIT, "compress-pc", "train", "--out", str(folder / "pc"), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)


def _commands(folder: Path) -> dict[str, tuple[list[str], str]]:
    """Per case: the nmkit command line and the peer's script (reading the same files)."""
    f = str(folder)
    return {
        "hamming": ([*NMKIT, "hamming", "--text-file", f"{f}/text.txt", "--pattern-file", f"{f}/pattern.txt",
                     "--json", "--quiet"], f"""
            import numpy as np
            t = np.frombuffer(open("{f}/text.txt", "rb").read(), np.uint8)
            p = np.frombuffer(open("{f}/pattern.txt", "rb").read(), np.uint8)
            n, m = len(t), len(p)
            hd = np.zeros(n - m + 1, np.int32)
            for j in range(m):
                hd += t[j:j + n - m + 1] != p[j]
            print(hd.min())"""),
        "ot": ([*NMKIT, "optimal-transport", "--source", f"{f}/x.npy", "--target", f"{f}/y.npy", "-k", "2",
                "--json", "--quiet"], f"""
            import numpy as np, ot
            x, y = np.load("{f}/x.npy"), np.load("{f}/y.npy")
            cost = ot.dist(x, y); cost /= cost.max()
            a = b = np.full(1000, 1e-3)
            plan = ot.smooth.smooth_ot_semi_dual(a, b, cost, 0.1, reg_type="sparsity_constrained", max_nz=2,
                                                 stopThr=1e-9, numItermax=500)
            print((plan * cost).sum())"""),
        "prune": ([*NMKIT, "prune", f"{f}/model.ts", "--method", "global-mp", "--sparsity", "0.9", "--out",
                   f"{f}/pruned", "--force", "--json", "--quiet"], f"""
            import torch
            from torch.nn.utils import prune
            model = torch.jit.load("{f}/model.ts")
            widths = [64, 1024, 1024, 1024, 10]  # the architecture of model.ts, rebuilt eagerly for torch's pruner
            layers = [torch.nn.Flatten()]
            for i in range(4):
                layers += [torch.nn.Linear(widths[i], widths[i + 1])] + ([torch.nn.ReLU()] if i < 3 else [])
            eager = torch.nn.Sequential(*layers)
            eager.load_state_dict(model.state_dict())
            params = [(m, "weight") for m in eager if isinstance(m, torch.nn.Linear)]
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.9)
            for m, name in params:
                prune.remove(m, name)
            torch.save(eager.state_dict(), "{f}/pruned_peer.pt")"""),
        "compress-pc": ([*NMKIT, "compress-pc", "encode", f"{f}/digits_test.npy", "--model", f"{f}/pc", "-o",
                         f"{f}/digits.nmpc", "--force", "--json", "--quiet"], f"""
            import lzma, numpy as np
            raw = np.load("{f}/digits_test.npy").tobytes()
            open("{f}/digits.xz", "wb").write(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))"""),
        "relax-sor": ([*NMKIT, "relax-sor", "--sequence", "files", "--path", f"{f}/sequence", "--learner",
                       "fixed", "--omega", "1.5", "--rtol", "1e-8", "--no-baselines", "--json", "--quiet"], f"""
            import numpy as np, scipy.io, scipy.sparse
            from pyamg.relaxation.relaxation import sor
            for t in range(20):
                a = scipy.sparse.csr_matrix(scipy.io.mmread(f"{f}/sequence/A_{{t}}.mtx"))
                b = np.load(f"{f}/sequence/b_{{t}}.npy")
                x = np.zeros_like(b)
                while np.linalg.norm(b - a @ x) > 1e-8 * np.linalg.norm(b):
                    sor(a, x, b, 1.5)"""),
    }


def _median_wall(command: list[str], repeats: int) -> float:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(CASES))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_inputs(folder)
        _prepare_models(folder)
        commands = _commands(folder)
        for key, case in CASES.items():
            if args.only and key not in args.only:
                continue
            nmkit_command, peer_script = commands[key]
            row = {"capability": case.name, "workload": case.workload, "in_process": case.in_process,
                   "nmkit_s": _median_wall(nmkit_command, args.repeats)}
            if case.peer_package and importlib.util.find_spec(case.peer_package) is None:
                row["peer"] = f"skipped: {case.peer_package} not installed"
            else:
                row["peer_s"] = _median_wall([sys.executable, "-c", textwrap.dedent(peer_script)], args.repeats)
                row["ratio"] = row["peer_s"] / row["nmkit_s"]
            rows.append(row)
    print_table("whole process: the nmkit command vs the peer as a plain script (median wall s)",
                ["capability", "workload", "nmkit s", "peer script s", "whole-process ratio", "in-process (README)"],
                [[r["capability"], r["workload"], f"{r['nmkit_s']:.2f}", f"{r['peer_s']:.2f}" if "peer_s" in r
                  else r["peer"], f"{r['ratio']:.2f}x" if "ratio" in r else "-", r["in_process"]] for r in rows])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
