"""Facts about the machine a benchmark ran on, for the reports in ``benchmarks/results/``."""

import platform


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
