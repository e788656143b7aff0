"""The --out folder: refused when busy or non-empty, --force clears only nmkit's files, failures leave nothing."""

import json
import os
import subprocess
import sys

import pytest

from nmkit.core import io
from nmkit.core.errors import InputError
from nmkit.core.outdir import LOCK, MANIFEST, output_folder


def test_non_empty_folder_is_refused_unless_forced_and_force_keeps_foreign_files(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty .*pass --force"):
        with output_folder(tmp_path, force=False, resume=False):
            pass
    with output_folder(tmp_path, force=True, resume=False) as folder:
        assert folder == tmp_path
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_force_deletes_what_the_earlier_run_wrote_and_nothing_else(tmp_path):
    with output_folder(tmp_path, force=False, resume=False):
        io.write_text(tmp_path / "result.json", "{}")
        io.write_text(tmp_path / "hits.csv", "old mode")
    (tmp_path / "mine.txt").write_text("user's")
    with output_folder(tmp_path, force=True, resume=False):
        assert not (tmp_path / "hits.csv").exists() and not (tmp_path / "result.json").exists()
        io.write_text(tmp_path / "distances.npy", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "distances.npy", "mine.txt"]


def test_resume_keeps_the_earlier_files(tmp_path):
    with output_folder(tmp_path, force=False, resume=False):
        io.write_text(tmp_path / "state.npz", "s")
    with output_folder(tmp_path, force=True, resume=True):
        assert (tmp_path / "state.npz").exists()


def test_a_second_run_on_a_busy_folder_is_refused(tmp_path):
    with output_folder(tmp_path / "out", force=False, resume=False):
        other = subprocess.run(
            [sys.executable, "-c", "import sys; from nmkit.core.outdir import output_folder\n"
             "try:\n with output_folder(sys.argv[1], force=True, resume=False): pass\n"
             "except Exception as e: print(e)", str(tmp_path / "out")], capture_output=True, text=True)
        assert f"another nmkit run (pid {os.getpid()}) is writing there" in other.stdout
    assert not (tmp_path / "out" / LOCK).exists()


def test_bad_input_leaves_no_folder_it_created(tmp_path):
    with pytest.raises(InputError):
        with output_folder(tmp_path / "a" / "b", force=False, resume=False):
            raise InputError("bad input")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["under-a-file", "dangling-link", "unwritable"])
def test_unusable_out_paths_are_input_errors(tmp_path, case):
    if case == "under-a-file":
        (tmp_path / "f").write_text("x")
        target = tmp_path / "f" / "out"
    elif case == "dangling-link":
        (tmp_path / "link").symlink_to(tmp_path / "nowhere")
        target = tmp_path / "link"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "out"
    with pytest.raises(InputError, match="--out"):
        with output_folder(target, force=False, resume=False):
            pass


def test_a_killed_force_rerun_leaves_no_stale_result_beside_its_checkpoint(tmp_path):
    with output_folder(tmp_path, force=False, resume=False):
        io.write_text(tmp_path / "result.json", "{}")
        io.write_text(tmp_path / "checkpoint.pt", "old")
    with pytest.raises(KeyboardInterrupt):  # SIGKILL stands in: nothing after the raise runs
        with output_folder(tmp_path, force=True, resume=False):
            io.write_text(tmp_path / "checkpoint.pt", "new")
            raise KeyboardInterrupt
    assert not (tmp_path / "result.json").exists() and (tmp_path / "checkpoint.pt").read_text() == "new"
    assert json.loads((tmp_path / MANIFEST).read_text()) == {"command": None, "files": ["checkpoint.pt"]}


def test_a_rerun_of_the_same_command_replaces_its_own_output_without_force(tmp_path):
    """A Makefile target `nmkit run x.yaml --out runs/x` runs twice: the second replaces the first's output;
    another command, or a file nmkit did not write, still needs --force."""
    with output_folder(tmp_path, force=False, resume=False, command="hamming"):
        io.write_text(tmp_path / "result.json", "{}")
        io.write_text(tmp_path / "hits.csv", "old")
    with output_folder(tmp_path, force=False, resume=False, command="hamming"):
        assert not (tmp_path / "hits.csv").exists()
        io.write_text(tmp_path / "result.json", "{}")
    with pytest.raises(InputError, match="pass --force"):
        with output_folder(tmp_path, force=False, resume=False, command="prune"):
            pass
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="pass --force"):
        with output_folder(tmp_path, force=False, resume=False, command="hamming"):
            pass
