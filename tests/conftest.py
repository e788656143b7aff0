"""Test-wide setup. TRITON_INTERPRET must be set before any kernel module imports triton, so it is
set here, when pytest imports this file, before the test modules are collected."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
