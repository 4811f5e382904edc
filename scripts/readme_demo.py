"""Put what `make demo` prints today into README.md.

Runs the demo (`.venv/bin/newsdesk demo`, as `make demo` does) in a fresh temporary folder,
so on a fresh store, and writes its standard output between the README's markers
`<!-- demo-output:begin -->` and `<!-- demo-output:end -->`, with the date and how long it
took. The README's sample is therefore the demo's output, never an edited copy;
`tests/trainers/test_demo.py` checks that a run of the demo prints the same lines (ids and
numbers aside).

    .venv/bin/python scripts/readme_demo.py [--readme README.md]
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- demo-output:begin -->", "<!-- demo-output:end -->"


def run_demo() -> tuple[str, float]:
    """The demo's standard output, as `make demo` shows it, and its wall time in seconds."""
    newsdesk = Path(sys.executable).with_name("newsdesk")
    with tempfile.TemporaryDirectory(prefix="newsdesk-demo-") as folder:
        started = time.perf_counter()
        done = subprocess.run(
            [str(newsdesk), "demo"], cwd=folder, capture_output=True, text=True, check=False
        )
        took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"newsdesk demo exited {done.returncode}:\n{done.stderr[-3000:]}")
    # `make demo` starts it as .venv/bin/newsdesk from the repository root.
    return done.stdout.replace(str(newsdesk), ".venv/bin/newsdesk"), took


def replace_block(readme: str, output: str, note: str) -> str:
    head, begin, rest = readme.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"README has no {BEGIN} ... {END} block")
    return f"{head}{BEGIN}\n{note}\n\n```text\n{output.rstrip()}\n```\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    output, took = run_demo()
    today = datetime.date.today().isoformat()
    note = f"<!-- written by scripts/readme_demo.py on {today}; the demo took {took:.0f} s -->"
    args.readme.write_text(replace_block(args.readme.read_text(), output, note))
    print(f"README demo output updated ({len(output.splitlines())} lines, demo {took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
