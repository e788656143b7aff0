"""Many patterns against many texts (hamming --patterns-file): every pair's best alignments and k-mismatch hits
equal brute force, whatever the file format, pattern lengths, executor or task split."""

import dataclasses

import numpy as np
import pytest

from nmkit.core.errors import InputError
from nmkit.core.executor import ExecutorSpec
from nmkit.core.hamming import batch
from nmkit.core.hamming.config import HammingConfig

DNA = np.frombuffer(b"ACGT", np.uint8)


def brute(text: np.ndarray, pattern: np.ndarray, wildcard: int | None = None) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(text, len(pattern))
    differ = windows != pattern
    if wildcard is not None:
        differ &= (windows != wildcard) & (pattern != wildcard)
    return differ.sum(1)


def best_of(distances: np.ndarray, top: int) -> list[tuple[int, int]]:
    order = np.lexsort((np.arange(len(distances)), distances))[:top]
    return [(int(i), int(distances[i])) for i in order]


@pytest.fixture
def genome(tmp_path):
    rng = np.random.default_rng(3)
    texts = {}
    (tmp_path / "texts").mkdir()
    for name, n in (("a.txt", 3000), ("b.txt", 1700)):
        texts[name] = rng.choice(DNA, n)
        (tmp_path / "texts" / name).write_bytes(texts[name].tobytes())
    reads = []
    for i in range(23):
        source = texts["a.txt" if i % 2 else "b.txt"]
        m = (12, 30, 45)[i % 3]
        start = int(rng.integers(0, len(source) - m))
        read = source[start:start + m].copy()
        read[rng.integers(0, m, 2)] = rng.choice(DNA, 2)
        reads.append((f"read_{i}", read))
    return tmp_path, texts, reads


def _write(path, reads, fmt):
    if fmt == "lines":
        path.write_bytes(b"".join(r.tobytes() + b"\n" for _, r in reads))
    elif fmt == "fasta":
        path.write_bytes(b"".join(b">" + n.encode() + b" extra words\n" + r[:7].tobytes() + b"\n" + r[7:].tobytes()
                                  + b"\n" for n, r in reads))
    else:
        path.write_bytes(b"".join(b"@" + n.encode() + b"\n" + r.tobytes() + b"\n+\n" + b"I" * len(r) + b"\n"
                                  for n, r in reads))


@pytest.mark.parametrize("fmt", ["lines", "fasta", "fastq"])
@pytest.mark.parametrize("k", [None, 3])
def test_every_pair_matches_brute_force(genome, fmt, k):
    folder, texts, reads = genome
    _write(folder / "reads", reads, fmt)
    config = HammingConfig(text_file=folder / "texts", patterns_file=folder / "reads", max_mismatches=k, top=4,
                           chunk_size=1000, executor="local:1")
    result = batch.scan_batch(config)
    assert [(m.pattern, m.text) for m in result.matches] == [
        (name if fmt != "lines" else f"line {i + 1}", text) for i, (name, _) in enumerate(reads) for text in texts]
    for match in result.matches:
        pattern = dict(reads)[match.pattern] if fmt != "lines" else \
            reads[int(match.pattern.removeprefix("line ")) - 1][1]
        distances = brute(texts[match.text], pattern)
        expected = best_of(distances, 4)
        if k is None:
            assert [(a.position, a.distance) for a in match.best] == expected
        else:
            assert [(a.position, a.distance) for a in match.best] == [e for e in expected if e[1] <= k]
            hits = np.flatnonzero(distances <= k)
            assert [(a.position, a.distance) for a in match.hits] == [(int(i), int(distances[i])) for i in hits]
        assert match.text_length == len(texts[match.text])


def test_local_workers_and_task_splits_give_the_same_matches(genome, tmp_path):
    folder, texts, reads = genome
    _write(folder / "reads", reads, "fasta")
    runs = [batch.scan_batch(HammingConfig(text_file=folder / "texts", patterns_file=folder / "reads", top=3,
                                           executor=executor, max_mismatches=4)) for executor in ("local:1", "local:2")]
    assert runs[0].tasks < runs[1].tasks
    assert runs[0].matches == runs[1].matches


def test_wildcards_and_integer_rows(tmp_path):
    rng = np.random.default_rng(8)
    text = rng.integers(0, 5, 400)
    rows = rng.integers(0, 5, (6, 9))
    rows[:, 4] = 7  # the wildcard
    np.save(tmp_path / "t.npy", text)
    np.save(tmp_path / "p.npy", rows)
    result = batch.scan_batch(HammingConfig(text_file=tmp_path / "t.npy", patterns_file=tmp_path / "p.npy",
                                            wildcard="7", top=5, executor="local:1"))
    for row, match in zip(rows, result.matches, strict=True):
        assert [(a.position, a.distance) for a in match.best] == best_of(brute(text, row, 7), 5)


def test_tasks_keep_patterns_of_one_length_together():
    patterns = [np.zeros(m, np.uint8) for m in (5, 7, 5, 5, 7, 9)]
    slices = batch._slices(patterns, ExecutorSpec("local", workers=1), 2)
    assert sorted(i for s in slices for i in s) == list(range(6))
    assert all(len({len(patterns[i]) for i in s}) == 1 for s in slices)


@pytest.mark.parametrize(("content", "message"), [(b"", "no patterns"), (b"@r1\nACGT\nIIII\n", "not FASTQ"),
                                                  (b"ACGT\n", "holds integers but patterns_file holds bytes")])
def test_bad_pattern_files_are_refused(tmp_path, content, message):
    (tmp_path / "p").write_bytes(content)
    np.save(tmp_path / "t.npy", np.arange(10))
    text = tmp_path / "t.npy" if b"ACGT\n" == content else tmp_path / "p"
    with pytest.raises(InputError, match=message):
        batch.scan_batch(HammingConfig(text_file=text, patterns_file=tmp_path / "p", executor="local:1"))


def test_a_resumed_batch_scans_only_the_tasks_not_logged(genome, monkeypatch):
    folder, texts, reads = genome
    _write(folder / "reads", reads, "fastq")
    config = HammingConfig(text_file=folder / "texts", patterns_file=folder / "reads", max_mismatches=3,
                           executor="local:1")
    (folder / "out").mkdir()
    first = batch.scan_batch(config, log_dir=folder / "out")
    log = folder / "out" / "tasks.jsonl"
    lines = log.read_text().splitlines()
    assert len(lines) == 1 + first.tasks
    log.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])  # one task logged, then a torn line
    scanned = []
    original = batch.scan_task
    monkeypatch.setattr(batch, "scan_task", lambda *task: scanned.append(task[1]) or original(*task))
    again = batch.scan_batch(dataclasses.replace(config, resume=True), log_dir=folder / "out")
    assert len(scanned) == first.tasks - 1 and again.matches == first.matches
    with pytest.raises(InputError, match="written for another batch"):
        batch.scan_batch(dataclasses.replace(config, resume=True, max_mismatches=2), log_dir=folder / "out")
