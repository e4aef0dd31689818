"""What every benchmark prints about the machine and the code it ran on."""
from __future__ import annotations

import os
import platform
import subprocess
import sys


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def engine_version() -> str:
    """The commit the routing code comes from, and whether routing/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "routing"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted routing/ changes' if dirty else ''}"


def conditions() -> dict:
    """The machine, the interpreter, the load when the run started, and the code version."""
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "loadavg_1_5_15_at_start": os.getloadavg(), "engine_version": engine_version()}
