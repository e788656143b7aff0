"""``nmkit hamming --patterns-file``: many patterns against one or more texts, as tasks on the run's executor.

Patterns are grouped by length; a task is one text and a slice of one length group. Inside a task the text is
read once, chunk by chunk, and encoded once per chunk with the slice's joint alphabet (every symbol of its
patterns; other text symbols share one code that matches nothing), then
* exact mode: each pattern's distances by the method ``auto`` picks for the slice (one choice per task), the
  ``top`` best alignments kept per pattern;
* k-mismatch: the chunk is hashed once and one pass over its windows finds the pigeonhole candidates of every
  pattern of the slice (:func:`nmkit.core.hamming.kangaroo.bounded_hits`), so a task costs one text scan plus
  its patterns' candidates, not one scan per pattern.
Each task's seed is its own child of the run's seed, keyed by its position, so results are the same wherever
the tasks run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmkit.core import io, memory
from nmkit.core.errors import InputError
from nmkit.core.executor import ExecutorSpec, TaskLog, capacity, run_tasks
from nmkit.core.hamming import choose
from nmkit.core.hamming.alphabet import Alphabet, parse_wildcard
from nmkit.core.hamming.config import HammingConfig
from nmkit.core.hamming.scan import Alignment, BestAlignments, exact_method
from nmkit.core.hamming.sources import MAX_TOKEN_BYTES, integer_array, open_text_file

TASKS_PER_WORKER = {"exact": 8, "k-mismatch": 2}
"""Slices per worker. Exact mode's work is all per pattern, so small slices cost nothing and balance the workers
(and keep the first, in-process one short); a k-mismatch slice's cost is mostly its scan of the text, so few."""


@dataclass
class Match:
    """One (pattern, text) pair: its best alignments, and in k-mismatch mode every hit."""

    pattern: str
    text: str
    pattern_length: int
    text_length: int
    best: list[Alignment]
    hits: list[Alignment] | None = None


@dataclass
class BatchResult:
    mode: str
    patterns: int
    texts: int
    tasks: int
    matches: list[Match]
    text_symbols: int  # summed over texts
    seconds: float = 0.0
    executor: str = ""

    def summary(self) -> dict:
        return {"mode": self.mode, "patterns": self.patterns, "texts": self.texts, "tasks": self.tasks,
                "executor": self.executor, "text_symbols": self.text_symbols, "seconds": self.seconds,
                "matches": [dataclasses.asdict(m) for m in self.matches]}


def read_patterns(path: Path, tokens: bool) -> tuple[list[str], list[np.ndarray], str]:
    """Names, patterns and their kind from a patterns file: FASTA (``>name description`` then sequence lines),
    FASTQ (``@name``, sequence, ``+``, qualities; a record's name is its header's first word), a 2-D ``.npy`` of
    integer rows, or one pattern per non-empty line (named ``line N``; tokens with ``tokens``)."""
    if path.suffix == ".npy":
        rows = io.load_npy(path)
        if rows.ndim != 2 or not np.issubdtype(rows.dtype, np.integer) or 0 in rows.shape:
            raise InputError(f"patterns_file {path}: expected a 2-D integer array, one pattern per row")
        return [f"row {i}" for i in range(len(rows))], [integer_array(r, path) for r in rows], "integers"
    memory.require(path.stat().st_size * 4 if path.is_file() else 0, f"patterns_file {path}")
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise InputError(f"patterns_file {path}: cannot be read ({exc.strerror or exc})") from None
    first = next((line for line in lines if line.strip()), b"")
    records = _fasta(lines) if first.startswith(b">") else _fastq(lines, path) if first.startswith(b"@") else \
        [(f"line {i}", line) for i, line in enumerate(lines, 1) if line.strip()]
    if not records:
        raise InputError(f"patterns_file {path}: no patterns (expected one per line, FASTA or FASTQ)")
    names = [name for name, _ in records]
    if tokens:
        patterns = [np.array(seq.decode("utf-8", errors="replace").split()) for _, seq in records]
        if any(len(t) > MAX_TOKEN_BYTES for p in patterns for t in p):
            raise InputError(f"patterns_file {path}: a token longer than {MAX_TOKEN_BYTES} characters")
        return names, patterns, "tokens"
    return names, [np.frombuffer(seq.rstrip(b"\r"), np.uint8) for _, seq in records], "bytes"


def _fasta(lines: list[bytes]) -> list[tuple[str, bytes]]:
    records: list[tuple[str, list[bytes]]] = []
    for line in lines:
        if line.startswith(b">"):
            records.append((_record_name(line), []))
        elif records and line.strip():
            records[-1][1].append(line.strip())
    return [(name, b"".join(parts)) for name, parts in records]


def _fastq(lines: list[bytes], path: Path) -> list[tuple[str, bytes]]:
    body = [line for line in lines if line.strip()]
    if len(body) % 4 or any(not body[i].startswith(b"@") or not body[i + 2].startswith(b"+")
                            for i in range(0, len(body), 4)):
        raise InputError(f"patterns_file {path}: not FASTQ (records of four lines: @name, sequence, +, qualities)")
    return [(_record_name(body[i]), body[i + 1].strip()) for i in range(0, len(body), 4)]


def _record_name(header: bytes) -> str:
    """A FASTA/FASTQ record's name: the first word after '>' or '@' (the rest is a description)."""
    words = header[1:].split(maxsplit=1)
    return words[0].decode("utf-8", errors="replace")[:200] if words else ""


def text_paths(path: Path) -> list[Path]:
    """A text file, or every visible regular file of a folder in name order; absolute, so that workers started
    elsewhere (a Dask cluster) find them."""
    path = path.resolve()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise InputError(f"text_file {path}: the folder holds no files")
        return files
    if not path.is_file():
        raise InputError(f"text_file {path}: no such file or folder")
    return [path]


def scan_batch(config: HammingConfig, advance: Callable[[int], None] | None = None,
               log_dir: Path | None = None) -> BatchResult:
    """Every pattern of ``config.patterns_file`` against every text of ``config.text_file``; with ``log_dir``,
    each finished task is logged there, so a run with ``resume`` scans only the rest."""
    start = time.perf_counter()
    names, patterns, kind = read_patterns(config.patterns_file, config.tokens)
    texts = text_paths(config.text_file)
    text_kind = "integers" if all(t.suffix == ".npy" for t in texts) else "tokens" if config.tokens else "bytes"
    if text_kind != kind:
        raise InputError(f"text_file {config.text_file} holds {text_kind} but patterns_file holds {kind}; give "
                         f"both as .npy, or both as text")
    executor = config.executor_spec()
    slices = _slices(patterns, executor, TASKS_PER_WORKER[config.mode])
    seeds = np.random.SeedSequence(config.seed).spawn(len(texts) * len(slices))
    tasks, labels = [], []
    for t, text in enumerate(texts):
        for s, members in enumerate(slices):
            seed = int(seeds[t * len(slices) + s].generate_state(1)[0])
            tasks.append((config, text, [patterns[i] for i in members], seed))
            labels.append(f"text {text.name}, patterns {names[members[0]][:60]} .. {names[members[-1]][:60]}")
    log = None if log_dir is None else TaskLog(log_dir / TASK_LOG, _batch_key(config, texts, len(tasks)),
                                               _encode_outcome, _decode_outcome)
    outcomes = run_tasks(scan_task, tasks, executor=executor, names=labels, advance=advance, log=log,
                         resume=config.resume)
    found: dict[tuple[int, int], tuple[list[Alignment], list[Alignment] | None, int]] = {}
    for (t, s), per_pattern in zip([(t, s) for t in range(len(texts)) for s in range(len(slices))], outcomes,
                                   strict=True):
        for index, outcome in zip(slices[s], per_pattern, strict=True):
            found[index, t] = outcome
    matches = [Match(names[p], texts[t].name, len(patterns[p]), found[p, t][2], found[p, t][0], found[p, t][1])
               for p in range(len(patterns)) for t in range(len(texts))]
    return BatchResult(config.mode, len(patterns), len(texts), len(tasks), matches,
                       sum(found[0, t][2] for t in range(len(texts))), time.perf_counter() - start,
                       executor.describe())


TASK_LOG = "tasks.jsonl"


def _batch_key(config: HammingConfig, texts: list[Path], tasks: int) -> dict:
    """What a task log is valid for: the fields that shape results, the texts (name, size, modification time),
    the patterns file's, and the number of tasks (the split follows the executor's capacity)."""
    from nmkit.core.recipe import to_plain

    files = [config.patterns_file, *texts]
    return {"fields": {k: v for k, v in to_plain(config).items() if k not in ("resume", "executor")}, "tasks": tasks,
            "files": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}


def _encode_outcome(outcome: list) -> list:
    return [[[[a.position, a.distance] for a in best], None if hits is None else
             [[a.position, a.distance] for a in hits], length] for best, hits, length in outcome]


def _decode_outcome(data: list) -> list:
    alignments = lambda pairs: [Alignment(int(p), d) for p, d in pairs]  # noqa: E731
    return [(alignments(best), None if hits is None else alignments(hits), int(length))
            for best, hits, length in data]


def _slices(patterns: list[np.ndarray], executor: ExecutorSpec, per_worker: int) -> list[list[int]]:
    """Pattern indices grouped by length, each group cut into ``per_worker`` slices per worker."""
    workers = capacity(executor)
    by_length: dict[int, list[int]] = {}
    for index, pattern in enumerate(patterns):
        if len(pattern) == 0:
            raise InputError(f"patterns_file: pattern {index + 1} is empty")
        by_length.setdefault(len(pattern), []).append(index)
    slices = []
    for members in by_length.values():
        size = math.ceil(len(members) / (per_worker * workers))
        slices += [members[i:i + size] for i in range(0, len(members), size)]
    return slices


def scan_task(config: HammingConfig, text: Path, patterns: list[np.ndarray], seed: int
              ) -> list[tuple[list[Alignment], list[Alignment] | None, int]]:
    """One text against patterns of one length: (best, hits, text length) per pattern."""
    m = len(patterns[0])
    alphabet = Alphabet.from_pattern(np.concatenate(patterns), parse_wildcard(config.wildcard, _kind(config, text)))
    encoded = [alphabet.encode(p) for p in patterns]
    best = [BestAlignments(config.top) for _ in patterns]
    hits: list[list[Alignment]] | None = [[] for _ in patterns] if config.mode == "k-mismatch" else None
    source = open_text_file(text, config.tokens, config.chunk_size)
    methods = None
    carry, offset, length = encoded[0][:0], 0, 0
    for chunk, raw in enumerate(source.chunks):
        length += len(raw)
        codes = alphabet.encode(raw)
        window = np.concatenate([carry, codes]) if len(carry) else codes
        if len(window) >= m:
            if hits is not None:
                _k_mismatch(window, encoded, config.max_mismatches, seed + chunk, offset, best, hits)
            else:
                methods = methods or _exact_methods(config, window, encoded, alphabet)
                for method, keep in zip(methods, best, strict=True):
                    keep.update(method(window), offset)
            offset += len(window) - m + 1
            window = window[len(window) - m + 1:]
        carry = window
    if offset == 0:
        raise InputError(f"text {text.name} (length {length}) is shorter than its patterns (length {m})")
    return [(keep.alignments(config.max_mismatches), None if hits is None else found, length)
            for keep, found in zip(best, hits or [None] * len(best), strict=True)]


def _kind(config: HammingConfig, text: Path) -> str:
    return "integers" if text.suffix == ".npy" else "tokens" if config.tokens else "bytes"


def _exact_methods(config: HammingConfig, window: np.ndarray, patterns: list[np.ndarray], alphabet: Alphabet):
    """One exact method for the task (chosen on its first window and pattern), bound to each pattern."""
    name = config.algorithm
    if name == "auto":
        shape = choose.Shape(len(window), len(patterns[0]), alphabet.size, alphabet.wildcard is not None, "cpu")
        name = choose.choose_exact(shape, window, patterns[0], alphabet.size)[0]
        if name == "direct" and len(patterns) > 1:  # the compiled code's load is paid once for all patterns
            name = "simd"
    return [exact_method(name, pattern, alphabet, "cpu") for pattern in patterns]


def _k_mismatch(window, patterns, k, seed, offset, best, hits) -> None:
    from nmkit.core.hamming import kangaroo

    for (positions, distances), keep, found in zip(kangaroo.bounded_hits(window, patterns, k, seed), best, hits,
                                                   strict=True):
        found.extend(Alignment(int(p) + offset, int(d)) for p, d in zip(positions, distances, strict=True))
        keep.add(positions + offset, distances)
