"""Helpers shared by the benchmarks: stats, /proc readings, the machine's description, the table.

Launching the executors is shared with the conformance runner: :mod:`scripts.conformancelib.launch`.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass


def b64len(chunk: str) -> int:
    """Decoded length of a base64 string, without decoding it."""
    return len(chunk) * 3 // 4 - chunk[-2:].count("=") if chunk else 0


def percentile(sortedSamples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted samples (``fraction`` in [0, 1])."""
    if not sortedSamples:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sortedSamples)))
    return sortedSamples[min(rank, len(sortedSamples)) - 1]


def statusKiB(pid: int, field: str) -> int | None:
    """A size field of /proc/PID/status (``VmRSS``, ``VmHWM``), or None when ``pid`` is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rssKiB(pid: int) -> int | None:
    """Resident set size of ``pid`` (``VmRSS`` in /proc/PID/status), or None when it is gone."""
    return statusKiB(pid, "VmRSS")


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpuSeconds(pid: int | None) -> float | None:
    """User + system CPU time of ``pid`` (all its threads, not its children), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _TICK


def machineDescription() -> list[str]:
    """Lines that say where a run happened (for the results file)."""
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return [
        f"machine: {os.cpu_count()} cores ({model or platform.machine()}), {platform.system()} "
        f"{platform.release()}",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]


@dataclass
class Row:
    """One line of a comparison table.

    ``values`` maps a column (target name) to a number, or to a short text when the measurement
    failed (``"timeout"``, ``"error: ..."``). ``lowerIsBetter`` orients the ratio's meaning.
    """

    label: str
    unit: str
    lowerIsBetter: bool
    values: dict[str, float | str]


def formatValue(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(ours: float | str | None, reference: float | str | None) -> float | None:
    """ours / reference, when both are numbers and the reference is not zero."""
    if isinstance(ours, float | int) and isinstance(reference, float | int) and reference:
        return float(ours) / float(reference)
    return None


def renderTable(rows: Sequence[Row], columns: Sequence[str]) -> list[str]:
    """A markdown table: label, unit, one column per target, ours/reference when both exist.

    The ratio is always ours divided by the reference; the arrow next to the unit tells which
    way is better (↓ lower is better, ↑ higher is better).
    """
    withRatio = "ours" in columns and "reference" in columns
    withBefore = withRatio and "before" in columns
    head = ["measurement", "unit", *columns]
    if withRatio:
        head.append("ours/ref")
    if withBefore:
        head.append("before/ref")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.label, row.unit + (" ↓" if row.lowerIsBetter else " ↑")]
        cells.extend(formatValue(row.values.get(c)) for c in columns)
        for name in ("ours", "before") if withBefore else ("ours",) if withRatio else ():
            r = ratio(row.values.get(name), row.values.get("reference"))
            cells.append("-" if r is None else f"{r:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
