"""Test-wide setup. TRITON_INTERPRET must be set before any kernel module imports triton, so it is
set here, when pytest imports this file, before the test modules are collected."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run, so CI results are reproducible.
settings.register_profile("nmkit", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("nmkit")
