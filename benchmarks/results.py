"""Write one section of benchmarks/RESULTS.md, keeping the others (and the analysis on top) in place."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).parent / "RESULTS.md"


def write_section(text: str) -> None:
    """Replace the ``## `` section whose heading starts like ``text``'s first line, or append it."""
    heading = text.splitlines()[0].split("(")[0].strip()
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    parts = current.split("\n## ")
    kept = [parts[0]] + ["## " + p for p in parts[1:] if not ("## " + p).startswith(heading)]
    RESULTS.write_text("\n\n".join(s.rstrip() for s in kept) + "\n\n" + text.rstrip() + "\n")
