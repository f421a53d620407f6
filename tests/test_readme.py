"""The README's Quick start as a newcomer runs it, the way rustdoc runs doc examples: its `sh`
blocks in order, in one bash shell, against a fresh stack (a table and functions of its own, the
default rate limits, as `make run` serves them); then, in the same shell, every `sh` block of
docs/api.md, whose examples continue the story.

The shell runs with `set -euo pipefail`, so a variable that no earlier answer set, a command that
is not installed, or a failing step stops the story. Every curl's HTTP status is checked: it must
be a 2xx, unless its line ends with `# expect: NNN` (a refusal the story shows on purpose), and
then exactly NNN. The story's one `API=http://127.0.0.1:3000` line is pointed at the test stack;
fogctl finds the test table through TABLE_NAME and DYNAMODB_ENDPOINT."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO, running_stack

README = REPO / "README.md"
API_REFERENCE = REPO / "docs" / "api.md"
API_LINE = "API=http://127.0.0.1:3000"
EXPECT = re.compile(r"#\s*expect:\s*(\d{3})\b")
STORY_SECONDS = 600

# Defines the curl the story calls: the real one, with its status written to stderr behind a
# marker, checked against the line's expectation and appended to $STORY_STATUSES.
PRELUDE = r"""
set -euo pipefail
STORY_EXPECT=2xx
STORY_AT=
curl() {
  local errors status code=0
  { errors=$(command curl "$@" --write-out '%{stderr}readme-status:%{http_code}' 2>&1 1>&3 3>&-) || code=$?; } 3>&1
  status=${errors##*readme-status:}
  errors=${errors%readme-status:*}
  if [ -n "$errors" ]; then printf '%s\n' "$errors" >&2; fi
  printf '%s %s %s\n' "$STORY_AT" "$STORY_EXPECT" "$status" >> "$STORY_STATUSES"
  case "$STORY_EXPECT:$status" in
    2xx:2??) ;;
    2xx:*) printf '%s: HTTP %s, not a 2xx (an expected refusal says # expect: %s)\n' \
             "$STORY_AT" "$status" "$status" >&2; return 1 ;;
    *) if [ "$status" != "$STORY_EXPECT" ]; then
         printf '%s: HTTP %s, not the %s the line expects\n' "$STORY_AT" "$status" "$STORY_EXPECT" >&2
         return 1
       fi ;;
  esac
  return "$code"
}
"""


@dataclass
class Command:
    file: str
    line: int  # in the Markdown file, 1-based
    text: str  # continuation lines joined with their backslash-newlines kept
    expect: str  # "2xx" or a status


def section(markdown: str, heading: str) -> tuple[str, int]:
    """The text under `heading` up to the next heading of its level or above, and the line it
    starts on."""
    level = len(heading.split(" ", 1)[0])
    lines = markdown.split("\n")
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i])), len(lines))
    return "\n".join(lines[start:end]), start + 1


def commands(path: Path, heading: str | None = None) -> list[Command]:
    """The `sh` blocks of the section (of the whole file without a heading), in order, one Command
    per logical line (comment lines dropped)."""
    markdown = path.read_text()
    text, first_line = section(markdown, heading) if heading else (markdown, 1)
    name = path.relative_to(REPO).as_posix()
    found, block, pending = [], None, None
    for number, line in enumerate(text.split("\n"), start=first_line):
        if block is None:
            if line.strip() == "```sh":
                block = number
            continue
        if line.strip() == "```":
            assert pending is None, f"line {number}: a block ends inside a continued command"
            block = None
            continue
        if pending is None:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            pending = Command(name, number, line, "2xx")
        else:
            pending.text += "\n" + line
        if not line.endswith("\\"):
            marker = EXPECT.search(pending.text)
            pending.expect = marker.group(1) if marker else "2xx"
            found.append(pending)
            pending = None
    assert block is None, "an sh block is not closed"
    return found


def script(steps: list[Command], api_url: str) -> str:
    body = []
    for step in steps:
        text = step.text.replace(API_LINE, f"API={api_url}") if step.text == API_LINE else step.text
        body.append(f"STORY_AT='{step.file}:{step.line}'; STORY_EXPECT={step.expect}\n{text}")
    return PRELUDE + "\n".join(body) + "\n"


def run_story(steps: list[Command], api, statuses: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "STORY_STATUSES": str(statuses),
        # fogctl, run as the story runs it, finds the test's table (make run's: .local/stack.json).
        "TABLE_NAME": api.table,
        "DYNAMODB_ENDPOINT": api.dynamodb.endpoint,
    }
    statuses.touch()
    return subprocess.run(["bash", "-c", script(steps, api.url)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=STORY_SECONDS)


def test_the_quick_start_and_the_api_examples_run_top_to_bottom_in_one_shell(dynamodb, tmp_path):
    quick_start = commands(README, "## Quick start")
    assert [step.text for step in quick_start].count(API_LINE) == 1, f"the story sets {API_LINE} once"
    steps = quick_start + commands(API_REFERENCE)
    assert not any("127.0.0.1:3000" in step.text for step in steps if step.text != API_LINE), \
        "every request goes to $API"
    curls = [len(re.findall(r"(?<![\w-])curl\s", step.text.split("#", 1)[0])) for step in steps]
    assert sum(curls[: len(quick_start)]) >= 10, "the Quick start walks the main paths"

    with running_stack(dynamodb, "fog-compute-readme", log=tmp_path / "functions.log") as api:
        result = run_story(steps, api, tmp_path / "statuses")
    checked = (tmp_path / "statuses").read_text().splitlines()
    report = f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}\nchecked (where, expected, got):\n" + \
        "\n".join(checked)
    assert result.returncode == 0, report
    assert "command not found" not in result.stderr, report
    assert len(checked) == sum(curls), f"every curl is checked\n{report}"


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_the_readme_stays_short_and_every_link_of_the_docs_resolves():
    assert len(README.read_text().splitlines()) <= 300, "README.md is the newcomer's page: the reference is in docs/"
    pages = [README, *sorted((REPO / "docs").glob("*.md"))]
    linked = set()
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, fragment = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.name}: {target}"
            linked.add(resolved)
            if fragment and resolved.suffix == ".md":
                headings = {anchor(line) for line in resolved.read_text().splitlines() if line.startswith("#")}
                assert fragment in headings, f"{page.name}: {target}"
    assert set(pages[1:]) <= linked, "every docs file is linked from somewhere"
