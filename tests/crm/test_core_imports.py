"""The CRM core (model, scores, stages) imports only the standard library, numpy and scipy, and reads no clock."""
from __future__ import annotations

import ast
import pathlib
import sys

CORE = ("clv.py", "value.py", "lifecycle.py")
ROOT = pathlib.Path(__file__).resolve().parents[2] / "crm"
ALLOWED_PACKAGES = {"numpy", "scipy", "__future__"}
ALLOWED_CORE = {"crm." + name.removesuffix(".py") for name in CORE}
STANDARD_LIBRARY = set(sys.stdlib_module_names) - {"random", "socket", "sqlite3", "urllib", "http", "subprocess"}
CLOCK_READS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
               ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "perf_counter")}


def violations(source: str) -> list[str]:
    """What in this module breaks the core's rules."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = ["." * node.level + (node.module or "")]
        else:
            modules = []
        for module in modules:
            top = module.split(".")[0]
            if module not in ALLOWED_CORE and top not in ALLOWED_PACKAGES and top not in STANDARD_LIBRARY:
                found.append(f"imports {module}")
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found.append("imports from time")  # `from time import time` would hide a clock read
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in CLOCK_READS:
                found.append(f"reads the clock: {node.value.id}.{node.attr}")
            if node.value.id in ("np", "numpy") and node.attr == "random":
                found.append("uses numpy's global random state")  # a seeded Generator is passed in instead
    return found


def test_the_crm_core_imports_only_the_standard_library_numpy_and_scipy_and_reads_no_clock():
    for name in CORE:
        assert violations((ROOT / name).read_text()) == [], name


def test_the_rule_catches_io_libraries_the_clock_and_global_randomness():
    source = """
import sqlalchemy
from hub.models import Stage
from . import models
from time import time
import random
import numpy as np
from datetime import datetime, date
datetime.now()
date.today()
np.random.random()
"""
    assert violations(source) == ["imports sqlalchemy", "imports hub.models", "imports .", "imports from time",
                                  "imports random", "reads the clock: datetime.now", "reads the clock: date.today",
                                  "uses numpy's global random state"]

