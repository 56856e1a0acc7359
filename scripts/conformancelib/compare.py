"""Two transcripts of a session compared, the report of a run, and the golden transcripts."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.conformancelib.known import KNOWN_DIFFERENCES
from scripts.conformancelib.runner import Transcript


@dataclass
class Outcome:
    name: str
    identical: bool
    known: str | None
    diff: list[str]
    orderProblems: list[str]


def compare(
    name: str,
    ref: Transcript,
    ours: Transcript,
    refName: str,
    oursName: str,
    known: dict[str, str] | None = None,
) -> Outcome:
    diff = list(difflib.unified_diff(ref.lines, ours.lines, refName, oursName, lineterm="", n=3))
    return Outcome(
        name=name,
        identical=not diff,
        known=(KNOWN_DIFFERENCES if known is None else known).get(name),
        diff=diff,
        orderProblems=ours.orderProblems,
    )


def report(
    outcomes: Sequence[Outcome],
    write: Callable[[str], None],
    verbose: bool,
    startupProblems: Sequence[str] = (),
    known: dict[str, str] | None = None,
) -> int:
    """Print the per-session results and the summary; return the exit status."""
    unexpected = len(startupProblems)
    for problem in startupProblems:
        write(f"startup: DIFFERENT: {problem}")
    for o in outcomes:
        if o.identical and not o.orderProblems:
            status = "same" + (" (listed as a known difference, but identical)" if o.known else "")
        elif o.identical:
            status = "DIFFERENT (notification order)"
        elif o.known:
            status = "different (known, deliberate)"
        else:
            status = "DIFFERENT"
        write(f"{o.name}: {status}")
        if (o.orderProblems or not o.identical) and not o.known:
            unexpected += 1
        if not o.identical and (not o.known or verbose):
            for line in o.diff:
                write("    " + line)
        for p in o.orderProblems:
            write(f"    out of seq order: {p}")
    same = sum(1 for o in outcomes if o.identical and not o.orderProblems)
    differ = len(outcomes) - same
    knownCount = sum(1 for o in outcomes if not o.identical and o.known)
    write("")
    write("Known, deliberate differences (reported, not failing):")
    for name, reason in sorted((KNOWN_DIFFERENCES if known is None else known).items()):
        write(f"  - {name}: {reason}")
    write(
        "  - process notifications: compared per process (outputs in seq order, then exited and "
        "closed, then the seq set); the reference's delivery order and even its seq assignment "
        "are racy (exited may take a seq before the last output), ours is strictly by seq "
        "(checked separately, for ours only)"
    )
    write(
        "  - PATH of inheriting children: the reference prepends its private helper directory "
        "($CODEX_HOME/tmp/arg0/codex-arg0XXXXXX); stripped before comparing"
    )
    write("")
    write(
        f"{len(outcomes)} sessions: {same} identical, {differ} differ "
        f"({knownCount} known/deliberate, {unexpected} unexpected"
        + (f", {len(startupProblems)} startup problem(s)" if startupProblems else "")
        + ")"
    )
    return 1 if unexpected else 0


def recordTranscript(directory: Path, name: str, transcript: Transcript) -> None:
    """The reference's transcript of one session, as a golden file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.txt").write_text("\n".join(transcript.lines) + "\n")


def readGolden(directory: Path, name: str) -> list[str]:
    return (directory / f"{name}.txt").read_text().splitlines()
