"""The command blocks of README.md and docs/*.md, run as a reader runs them against the local AWS,
their output compared with the output the page shows (issue 13, finding 11: docs had drifted).

Every ```console block of those pages is marked on the line before it:

- `<!-- run -->`: the block's `$ ` commands run in one bash, from the repository root, in a shell
  where local-aws.env was sourced (as README.md's demo leaves the reader: AWS_ENDPOINT_URL on this
  test's local AWS, the venv's tools first on PATH, a config directory of the test's own). What
  the page shows as their output (the block's own lines that are not commands, and the first ```text
  block after it, before any other fenced block or heading) must be found in the real output, line after line in order, once both are
  masked (ids, digests, times, ports, account ids; `...` in a shown line matches anything, a line
  of `...` alone any number of lines).
- `<!-- not run: REASON -->`: left out, the reason said (real AWS, AWX, the test suite itself).

A block with neither fails the test, so a new page or block is classified when it is written.
`make local-up` and `make local-down` lines are not run: the test's local AWS is already up on
LOCAL_AWS_PORT (make local-up would find it and do nothing), and make local-down would stop the
developer's own local AWS (its pid file is .venv's), not the test's.

The pages run in PAGES order, on one local AWS of the module's own, each rack as the pages leave it
for the next (README.md installs `production` and uninstalls it, docs/playbooks.md installs it again
with `staging`, updates it ...): README.md's blocks take about 40 s, the others about 3 minutes.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, VENV_BIN, _start_local_aws, _stop_local_aws

# The order the pages run in (the state one leaves is the next one's start); every other page may hold
# no runnable block.
PAGES = ["README.md", "docs/playbooks.md", "docs/rack.md", "docs/inventory.md", "docs/local-aws.md",
         "docs/development.md"]
MARK = re.compile(r"^<!-- (?:(?P<run>run)|not run: (?P<why>.+?)) -->$")
NOT_RUN_LINES = re.compile(r"^(make local-up|make local-down)\b")

MASKS = [
    (re.compile(r"\b(convox-[a-z0-9-]+?)-[0-9a-f]{12}\b"), r"\1-<digest>"),
    (re.compile(r"\b(vpc|subnet|igw|nat|eipalloc|eni|sg|rtb|lt|i|ami|r)-[0-9a-f]{8,17}\b"), r"\1-<id>"),
    (re.compile(r"\b(convox-[a-z0-9-]+)-\d+\.([a-z0-9-]+)\.elb\.amazonaws\.com"), r"\1-<n>.\2.elb.amazonaws.com"),
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d+"), r"\1:<port>"),
    (re.compile(r"\b\d{12}\b"), "<account>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?\b"), "<time>"),
    (re.compile(r"\((\d+m)?\d+s\)"), "(<elapsed>)"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<run>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
]


def mask(line):
    for pattern, repl in MASKS:
        line = pattern.sub(repl, line)
    return line.strip()


class Block:
    def __init__(self, page, line, lines, mark, why, shown):
        self.page, self.line, self.lines, self.mark, self.why, self.shown = page, line, lines, mark, why, shown

    @property
    def where(self):
        return "%s:%d" % (self.page, self.line)

    def commands(self):
        """The `$ ` lines (a trailing backslash joins the next), and the block's other lines (its output)."""
        commands, output, current = [], [], None
        for line in self.lines:
            if current is not None:
                current += "\n" + line
                if not line.endswith("\\"):
                    commands.append(current)
                    current = None
            elif line.startswith("$ "):
                if line.endswith("\\"):
                    current = line[2:]
                else:
                    commands.append(line[2:])
            else:
                output.append(line)
        return commands, output + self.shown


def blocks(page):
    """The ```console blocks of a page, with their mark and the ```text block right after them."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        lines = f.read().splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = MARK.match(before)
        start, i = i, i + 1
        body = []
        while lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        j = i + 1
        # the output shown: the first ```text block after it, before any other fenced block or heading
        while j < len(lines) and not lines[j].startswith(("```", "#")):
            j += 1
        shown = []
        if j < len(lines) and lines[j].strip() == "```text":
            j += 1
            while lines[j].strip() != "```":
                shown.append(lines[j])
                j += 1
        out.append(Block(page, start + 1, body, "run" if mark and mark["run"] else ("not run" if mark else None),
                         mark["why"] if mark else None, shown))
        i += 1
    return out


def all_pages():
    return ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def test_every_command_block_is_marked():
    unmarked = [b.where for page in all_pages() for b in blocks(page) if b.mark is None]
    assert not unmarked, "mark each ```console block <!-- run --> or <!-- not run: REASON -->: %s" % unmarked
    stray = [b.where for page in all_pages() if page not in PAGES for b in blocks(page) if b.mark == "run"]
    assert not stray, "a page with runnable blocks must be in PAGES (the order pages run in): %s" % stray


def compare(block, real):
    """The first shown line (masked) not found, in order, in the real output (masked); None when all are."""
    _commands, shown = block.commands()
    got = [mask(line) for line in real.splitlines()]
    at = 0
    for line in shown:
        want = mask(line)
        if not want or want == "...":
            continue
        pattern = re.compile("^" + ".*".join(re.escape(part) for part in want.split("...")) + "$")
        for k in range(at, len(got)):
            if pattern.match(got[k]):
                at = k + 1
                break
        else:
            return line
    return None


@pytest.fixture(scope="module")
def docs_aws(tmp_path_factory):
    """A local AWS of this module's own: the pages list every rack of the region (racks.yml, the inventory),
    so no other test's rack may live there (the file is one unit of work: tests/conftest.py GROUPS)."""
    proc, aws, log = _start_local_aws(str(tmp_path_factory.mktemp("docs-aws") / "moto.log"))
    yield aws
    _stop_local_aws(proc, log)


@pytest.fixture(scope="module")
def shell(docs_aws, tmp_path_factory):
    """The environment of a reader's shell after `set -a; . ./local-aws.env; set +a` (on this module's local AWS)."""
    local_aws = docs_aws
    env = dict(local_aws.env)
    env.pop("ANSIBLE_CONFIG", None)   # the repository's ansible.cfg, as a reader's shell finds it
    env.update(LOCAL_AWS_PORT=str(local_aws.port), PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
               XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("config")), NO_COLOR="1", ANSIBLE_FORCE_COLOR="0",
               CONVOX_VENV_BIN=VENV_BIN)
    env.pop("CONVOX_RACK", None)
    return env


def run_block(block, env):
    commands, _shown = block.commands()
    script = "\n".join(c for c in commands if not NOT_RUN_LINES.match(c))
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                              text=True, timeout=900, check=False)
        out.seek(0)
        return proc.returncode, out.read()


def run_pages(pages, env):
    timings, wrong = [], []
    for page in pages:
        for block in blocks(page):
            if block.mark != "run":
                continue
            started = time.monotonic()
            _rc, real = run_block(block, env)
            timings.append((block.where, round(time.monotonic() - started, 1)))
            missing = compare(block, real)
            if missing is not None:
                wrong.append("%s shows %r, not in the real output:\n%s" % (block.where, missing, real[-4000:]))
    print("docs command blocks (seconds): %s" % timings)
    return wrong


def test_readme_commands(shell):
    """README.md's blocks: the demo as a user types it (also the ansible-core matrix's demo, scripts/matrix.py)."""
    wrong = run_pages(["README.md"], shell)
    assert not wrong, "\n\n".join(wrong)


def test_docs_commands(shell):
    """docs/*.md's blocks, in PAGES order, after README.md's."""
    wrong = run_pages(PAGES[1:], shell)
    assert not wrong, "\n\n".join(wrong)
