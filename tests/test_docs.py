"""The documentation: the MkDocs site builds with `--strict` (every page and anchor link resolves),
and README.md, its front page and the package's long description, stays short with every relative
link (and anchor) resolving where GitHub shows it.
"""

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 250


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "elasticache" / "index.html").is_file()
    home = (tmp_path / "site" / "index.html").read_text()
    assert 'href="deploy/"' in home and 'src="dashboard.png"' in home  # the README's docs/ links, rewritten


def test_the_readme_is_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def slug(heading: str) -> str:
    """A heading's anchor as Python-Markdown's toc (MkDocs) and GitHub make it, for the headings here."""
    text = unicodedata.normalize("NFKD", heading.replace("`", "")).encode("ascii", "ignore").decode()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower())


def anchors(page: Path) -> set[str]:
    fenced, found = False, set()
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6} (.+)", line)):
            found.add(slug(heading.group(1)))
    return found


def test_every_relative_link_of_the_readme_resolves():
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative, "the README links into docs/"
    for link in relative:
        path, _, anchor = unquote(link).partition("#")
        target = ROOT / path if path else README
        assert target.is_file(), f"README.md links to {link}: no such file"
        if anchor:
            assert anchor in anchors(target), f"README.md links to {link}: {path or 'README.md'} has no such heading"


def test_the_anchor_of_a_heading_is_the_one_mkdocs_makes():
    assert slug("Redis on today's AWS: ElastiCache Serverless, cluster mode, TLS, IAM") == (
        "redis-on-todays-aws-elasticache-serverless-cluster-mode-tls-iam"
    )
    assert slug("Publishing `lamed-ab`") == "publishing-lamed-ab"
