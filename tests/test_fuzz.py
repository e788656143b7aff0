"""Seeded fuzzing of every shipped recipe (issue 17): mutated values, keys and structure, and path fields pointed
at hostile files. Each mutant runs as a real ``nmkit`` process under a memory limit and a time limit; it must
exit 0 or 2 (or still be running at the limit), print no traceback and no "internal error", never run out of
memory (sizes are estimated before allocating), and create files only inside its own folder."""

import dataclasses
import os
import random
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from nmkit.cli.app import app  # noqa: F401 - registers every command in COMMANDS
from nmkit.cli.common import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
SEED = 17
MUTANTS_PER_RECIPE = 4
SECONDS_PER_MUTANT = 4
SAME_SCHEMA = {"compress-pc-mnist", "compress-pc-photos"}
"""Full-size variants of a recipe that is fuzzed already (same command and fields): their mutants would only run
out the clock."""
MEMORY_LIMIT = 6 << 30  # address space: torch and numba reserve ~2 GiB of it before doing anything

HOSTILE_VALUES = [0, -1, 1, 2**31, 2**63, 10**400, 1e18, -1e300, 1e-300, float("inf"), float("-inf"),
                  float("nan"), "", "abc", "../../../etc/passwd", "\x00", "x" * 5000, None, True, [], {}, [1, "a"],
                  {"nested": {"deeper": [1, 2]}}]
PATH_FIELDS = ("model", "data", "source", "target", "cost", "matrix", "rhs", "instance", "path", "input",
               "checkpoint", "text_file", "pattern_file", "targets", "source_weights")


def hostile_files(folder: Path) -> list[Path]:
    """Files a careless or hostile colleague might point a recipe at."""
    folder.mkdir()
    made = {
        "secret.txt": b"root:SECRET-HASH-4f2a9:19000:0:99999:7:::\n",
        "empty.bin": b"",
        "garbage.bin": random.Random(SEED).randbytes(4096),
        "huge.mtx": b"%%MatrixMarket matrix coordinate real general\n2000000000 2000000000 2000000000\n1 1 1\n",
        "complex.mtx": b"%%MatrixMarket matrix coordinate complex hermitian\n2 2 2\n1 1 4 0\n2 2 4 0\n",
        "nan.txt": b"2 10.0 1\n5 1 1 nan 1\n4 1 1 3 1\n",
        "garbage.safetensors": random.Random(SEED + 2).randbytes(2048),
        "huge-header.safetensors": b"\xff" * 7 + b"\x7f{}",
    }
    for name, data in made.items():
        (folder / name).write_bytes(data)
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(folder / "complex.npy", np.ones((4, 2)) + 1j)
    np.save(folder / "nan.npy", np.array([[np.nan, 1.0], [1.0, 2.0]]))
    np.save(folder / "empty.npy", np.zeros((0, 2)))
    np.savez(folder / "wrong.npz", x=np.ones((3, 2)), y=np.ones(2))
    (folder / "a-folder").mkdir()
    (folder / "dangling").symlink_to(folder / "nowhere")
    return sorted(folder.iterdir())


@dataclasses.dataclass
class Mutant:
    name: str
    text: str


def mutants(recipe: Path, files: list[Path], rng: random.Random) -> list[Mutant]:
    data = yaml.safe_load(recipe.read_text())
    fields = [f.name for f in dataclasses.fields(COMMANDS[data["command"]].schema)]
    out = []
    for index in range(MUTANTS_PER_RECIPE):
        mutated = dict(data)
        kind = rng.choice(["value", "value", "path", "key", "structure"])
        if kind == "value":
            key = rng.choice([k for k in mutated if k != "command"] + fields)
            mutated[key] = rng.choice(HOSTILE_VALUES)
            label = f"{key}={str(mutated[key])[:20]!r}"
        elif kind == "path" and set(PATH_FIELDS) & set(fields):
            key = rng.choice(sorted(set(PATH_FIELDS) & set(fields)))
            mutated[key] = str(rng.choice(files))
            label = f"{key}->{Path(mutated[key]).name}"
        elif kind == "key":
            mutated[rng.choice(["trust_pickle", "unknown_field", "output", "__class__"])] = rng.choice(HOSTILE_VALUES)
            label = "extra key"
        else:
            choice = rng.choice(["command", "list", "scalar"])
            mutated = {"command": rng.choice(list(COMMANDS) + ["nope", 5])} | {k: v for k, v in data.items()
                                                                             if k != "command"} \
                if choice == "command" else [data] if choice == "list" else "just a string"
            label = choice
        text = yaml.safe_dump(mutated, sort_keys=False, allow_unicode=False)
        out.append(Mutant(f"{recipe.stem}#{index} {kind} {label}", text))
    return out


FILE_TEMPLATES = [
    ["optimal-transport", "--source", "{f}", "--target", "{f}"], ["optimal-transport", "--cost", "{f}"],
    ["solve-linear", "--matrix", "{f}"], ["solve-linear", "--n", "16", "--rhs", "{f}"],
    ["relax-sor", "--sequence", "files", "--path", "{f}"], ["robust-opt", "exact", "{f}"],
    ["robust-opt", "solve", "{f}", "--model", "{f}"], ["attack", "{f}"], ["prune", "{f}"],
    ["compress-pc", "decode", "{f}", "--model", "{f}", "-o", "decoded.npy"],
    ["compress-pc", "encode", "{f}", "--model", "{f}", "-o", "encoded.nmpc"],
    ["train-snn", "sample", "--checkpoint", "{f}"], ["train-snn", "--data", "{f}", "--steps", "1"],
    ["hamming", "--text-file", "{f}", "--pattern-file", "{f}"], ["hamming", "--text-file", "{f}", "--pattern", "a",
                                                                  "--tokens"],
]
FILE_CASES = 40


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_case(name: str, args: list[str], folder: Path) -> tuple[str, int | None, str, Path]:
    """``nmkit ARGS --out FOLDER/out -q`` in ``folder`` under the limits; exit code None: still running."""
    env = {**os.environ, "NMKIT_THREADS": "1", "HOME": str(folder)}
    try:
        done = subprocess.run([sys.executable, "-m", "nmkit", *args, "--out", str(folder / "out"), "-q"],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=SECONDS_PER_MUTANT,
                              preexec_fn=_limit_memory)
        return name, done.returncode, done.stderr, folder
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else ""
        return name, None, stderr, folder


def run_all(cases: list[tuple[str, list[str], Path]]) -> list[tuple[str, int | None, str, Path]]:
    for _, _, folder in cases:
        folder.mkdir(exist_ok=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda case: run_case(*case), cases))


def problems_in(results) -> list[str]:
    problems = []
    for name, code, stderr, _ in results:
        if code is not None and code not in (0, 2):
            problems.append(f"{name}: exit {code}: {stderr.strip()[-200:]}")
        for bad in ("Traceback", "internal error", "out of memory"):
            if bad in stderr:
                problems.append(f"{name}: {bad}: {stderr.strip()[-300:]}")
        if "SECRET" in stderr:
            problems.append(f"{name}: echoed a file's contents")
    return problems


def assert_clean(tmp_path: Path, before: set[Path], results) -> None:
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if not any(p.is_relative_to(folder) for *_, folder in results)]
    assert not outside, f"files created outside the runs' folders: {outside[:5]}"
    finished = sum(code is not None for _, code, _, _ in results)
    assert finished >= len(results) // 2, f"only {finished} of {len(results)} cases finished in time"
    problems = problems_in(results)
    assert not problems, "\n".join(problems)


def test_fuzzed_recipes_fail_cleanly(tmp_path):
    rng = random.Random(SEED)
    files = hostile_files(tmp_path / "hostile")
    mutated = [m for recipe in RECIPES if recipe.stem not in SAME_SCHEMA for m in mutants(recipe, files, rng)]
    before = {p for p in tmp_path.rglob("*")}
    cases = []
    for index, mutant in enumerate(mutated):
        folder = tmp_path / f"case{index}"
        folder.mkdir()
        (folder / "recipe.yaml").write_text(mutant.text)
        cases.append((mutant.name, ["run", str(folder / "recipe.yaml")], folder))
    assert_clean(tmp_path, before, run_all(cases))
    assert sorted(p.name for p in (ROOT / "recipes").iterdir()) == sorted(p.name for p in RECIPES)


def test_hostile_files_fail_cleanly(tmp_path):
    rng = random.Random(SEED + 1)
    files = hostile_files(tmp_path / "hostile")
    before = {p for p in tmp_path.rglob("*")}
    combos = rng.sample([(t, f) for t in FILE_TEMPLATES for f in files], FILE_CASES)
    cases = [(f"{' '.join(t[:2])} <- {f.name}", [a.format(f=f) for a in t], tmp_path / f"case{i}")
             for i, (t, f) in enumerate(combos)]
    assert_clean(tmp_path, before, run_all(cases))


# Last round's input surfaces (issue 34): robust-opt references and capital budgets, image folders, safetensors and
# Hugging Face folders, TorchScript for attack and prune, Matrix Market and scipy .npz, relax-sor folder sequences.


def _seed_files(folder: Path) -> dict[str, Path]:
    """One valid file per surface: the starting points of the byte mutants below."""
    import scipy.sparse
    import torch
    from safetensors.torch import save_file

    folder.mkdir()
    n = 6
    matrix = scipy.sparse.csr_matrix(scipy.sparse.diags([[-1.0] * (n - 1), [2.5] * n, [-1.0] * (n - 1)], [-1, 0, 1]))
    scipy.sparse.save_npz(folder / "A.npz", matrix, compressed=False)
    (folder / "A.mtx").write_text("%%MatrixMarket matrix coordinate real symmetric\n3 3 5\n1 1 4\n2 2 4\n3 3 4\n"
                                  "2 1 -1\n3 2 -1\n")
    save_file({"layer.weight": torch.ones(4, 4), "layer.bias": torch.zeros(4)}, folder / "m.safetensors")
    (folder / "kp.txt").write_text("2 10 1\n5 1 1 3 1\n4 1 1 3 1\n")
    (folder / "ref.csv").write_text("instance,best_known_profit,neur2ro_gap_percent\nkp,5,1.5\n")
    (folder / "cb.txt").write_text("1 2 4 10 0\n1 2\n3 4\n" + "0.25 0.25 0.25 0.25\n" * 4)
    (folder / "images").mkdir()
    (folder / "images" / "a.pgm").write_bytes(b"P5\n4 2\n255\n" + bytes(range(8)))
    return {path.name: path for path in folder.iterdir()}


def _mutant(source: Path, target: Path, rng: random.Random) -> Path:
    data = bytearray(source.read_bytes())
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(data))
        data[position] = rng.choice([0, 0xFF, ord("9"), ord("-"), ord("#"), ord(","), rng.randrange(256)])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(data))
    return target


SURFACE_COMMANDS = {
    "A.npz": ["solve-linear", "solve", "--method", "cg", "--matrix", "{f}"],
    "A.mtx": ["solve-linear", "solve", "--method", "cg", "--matrix", "{f}"],
    "m.safetensors": ["prune", "{f}", "--sparsity", "0.5"],
    "kp.txt": ["robust-opt", "solve", "{f}", "--time-limit", "2"],
    "ref.csv": ["robust-opt", "solve", "{kp}", "--reference", "{f}", "--time-limit", "2"],
    "cb.txt": ["robust-opt", "exact", "{f}", "--problem", "capital_budgeting"],
    "images": ["compress-pc", "train", "--data", "{f}", "--set", "minibatch_epochs=1", "--set", "full_batch_epochs=1"],
}
SURFACE_MUTANTS = 14


def _known_hostile_cases(folder: Path, seeds: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """The issue's findings, each as a file and the command that met it: all must now exit 2."""
    import scipy.sparse
    import torch
    from safetensors.torch import save_file

    folder.mkdir()
    broken = scipy.sparse.load_npz(seeds["A.npz"])
    broken.indices[3] = 1000
    scipy.sparse.save_npz(folder / "indices.npz", broken, compressed=False)
    (folder / "pattern.mtx").write_text("%%MatrixMarket matrix coordinate pattern symmetric\n3 3 5\n1 1\n2 2\n3 3\n"
                                        "2 1\n3 2\n")
    (folder / "both.mtx").write_text("%%MatrixMarket matrix coordinate real symmetric\n2 2 4\n1 1 4\n2 2 4\n2 1 1\n"
                                     "1 2 1\n")
    save_file({"layer.weight": torch.full((2, 2), float("nan"))}, folder / "nan.safetensors")
    (folder / "hf").mkdir()
    save_file({"a.weight": torch.ones(4, 4)}, folder / "hf" / "model-00001.safetensors")
    (folder / "hf" / "model.safetensors.index.json").write_text('{"weight_map": {"ghost": "model-00001.safetensors"}}')
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))).save(str(folder / "three.ts"))
    (folder / "dup.csv").write_text("instance,best_known_profit\nkp,5\nkp,6\n")
    (folder / "bom.csv").write_bytes(b"\xef\xbb\xbfinstance,best_known_profit\nkp,0\n")
    (folder / "cb-huge.txt").write_text("1 100000000 4 10 0\n1 2\n3 4\n")
    (folder / "bomb").mkdir()
    np.save(folder / "hollow.npy", np.zeros((50, 0), np.uint8))
    (folder / "gap").mkdir()
    for t in (0, 5):
        scipy.sparse.save_npz(folder / "gap" / f"A_{t}.npz", 2 * scipy.sparse.eye(6, format="csr"))
        np.save(folder / "gap" / f"b_{t}.npy", np.ones(6))
    import struct
    import zlib

    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    (folder / "bomb" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000,
                                                                                              8, 0, 0, 0, 0))
                                            + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b""))
    f = {p.name: str(p) for p in folder.iterdir()}
    kp = str(seeds["kp.txt"])
    return [
        ("csr indices", ["solve-linear", "solve", "--method", "cg", "--matrix", f["indices.npz"]]),
        ("pattern mtx", ["solve-linear", "solve", "--method", "cg", "--matrix", f["pattern.mtx"]]),
        ("both triangles", ["solve-linear", "solve", "--method", "cg", "--matrix", f["both.mtx"]]),
        ("nan safetensors", ["prune", f["nan.safetensors"]]),
        ("hf index", ["prune", f["hf"]]),
        ("3-class model", ["attack", f["three.ts"]]),
        ("duplicate reference", ["robust-opt", "solve", kp, "--reference", f["dup.csv"]]),
        ("zero reference with BOM", ["robust-opt", "solve", kp, "--reference", f["bom.csv"]]),
        ("capital budget n=1e8", ["robust-opt", "exact", f["cb-huge.txt"], "--problem", "capital_budgeting"]),
        ("image bomb", ["compress-pc", "train", "--data", f["bomb"]]),
        ("(50, 0) array", ["compress-pc", "train", "--data", f["hollow.npy"]]),
        ("sequence gap", ["relax-sor", "--sequence", "files", "--path", f["gap"]]),
    ]


def test_last_rounds_surfaces_fail_cleanly(tmp_path):
    """The issue-34 findings exit 2 as real processes under the limits, and seeded byte mutants of a valid file
    of every surface exit 0 or 2 with one line (no segfault, no traceback, no internal error)."""
    rng = random.Random(SEED + 34)
    seeds = _seed_files(tmp_path / "seeds")
    known = _known_hostile_cases(tmp_path / "known", seeds)
    before = {p for p in tmp_path.rglob("*")}
    cases = [(f"known: {name}", args, tmp_path / f"known{i}") for i, (name, args) in enumerate(known)]
    for index in range(SURFACE_MUTANTS):
        name = sorted(SURFACE_COMMANDS)[index % len(SURFACE_COMMANDS)]
        folder = tmp_path / f"mutant{index}"
        if name == "images":
            target = _mutant(seeds["images"] / "a.pgm", folder / "in" / "images" / "a.pgm", rng).parent
        else:
            target = _mutant(seeds[name], folder / "in" / name, rng)
        args = [a.format(f=target, kp=seeds["kp.txt"]) for a in SURFACE_COMMANDS[name]]
        cases.append((f"mutant of {name}", args, folder))
    results = run_all(cases)
    assert_clean(tmp_path, before, results)
    not_refused = [f"{name}: exit {code}" for name, code, _, _ in results if name.startswith("known") and code != 2]
    assert not not_refused, not_refused
