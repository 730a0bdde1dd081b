"""The static site in a real browser: Debian's headless Chromium opens the pages from disk with the network off.

For each page: the DOM after its scripts ran (``--dump-dom``) holds the figures of the JSON beside it, the page's
own error recorder (``#page-errors``: script errors, failed or blocked loads, Content-Security-Policy violations)
stayed empty, and Chromium's log (``--enable-logging=stderr``) has no console message. A screenshot of each
page is kept under ``$DRILL_TEST_ARTIFACTS/site-screenshots`` (else the test's tmp folder); its path is printed.

"Network off": every request goes to a proxy on an unroutable loopback port and every host name resolves to
nothing, so a page that tried to load anything would fail (and the recorder would say so: the control test
below checks that it does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.archive import generating, indexing, site
from orchestrator.definitions import catalog as catalog_

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AS_OF = datetime(2026, 1, 15, tzinfo=UTC)
NETWORK_OFF = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE = re.compile(r":CONSOLE[:(]")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    done = subprocess.run(
        ["bash", str(REPO / "tests" / "install-browser.sh")], capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"tests/install-browser.sh failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def browser() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-site")
    made = generating.generate(
        root, seed=5, runs=60, people=8, failure_modes=8, start=datetime(2025, 1, 1, tzinfo=UTC), days=365
    )
    catalog = catalog_.load_catalog(made.catalog)
    index = indexing.open_index(made.archive, url=made.archive / indexing.INDEX_FILE)
    try:
        indexing.rebuild_index(made.archive, index=index, catalog=catalog)
        summary = site.build_site(made.archive, root / "site", catalog=catalog, as_of=AS_OF, index=index)
    finally:
        index.close()
    assert summary.skipped == [] and summary.runs == made.runs
    return root / "site"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("DRILL_TEST_ARTIFACTS")
    folder = Path(base) / "site-screenshots" if base else tmp_path_factory.mktemp("site-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _chromium_run(browser: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [browser, *NETWORK_OFF, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp,
    )


def open_page(browser: str, page: Path, screenshot: Path, tmp: Path) -> str:
    """The page's DOM after its scripts ran; a screenshot of it; no console message, no recorded error."""
    url = page.resolve().as_uri()
    dom = _chromium_run(browser, tmp, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if CONSOLE.search(line)]
    assert console == [], console
    shot = _chromium_run(browser, tmp, f"--screenshot={screenshot}", "--window-size=1280,2000", url)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    print(f"screenshot: {screenshot}")
    html = dom.stdout
    assert 'data-loaded="yes"' in html, "the page's scripts did not run"
    recorder = re.search(r'<pre id="page-errors"( hidden(?:="")?)?>(.*?)</pre>', html, re.S)
    assert recorder is not None and recorder.group(1) is not None and recorder.group(2) == "", recorder
    return html


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _seconds(value: float) -> str:
    text = f"{value:.3f}"
    while text.endswith("0"):
        text = text[:-1]
    return text.removesuffix(".") + " s"


def test_the_pages_open_from_disk_offline_and_show_the_json_figures(
    browser: str, site_dir: Path, artifacts: Path, tmp_path: Path
) -> None:
    index = open_page(browser, site_dir / "index.html", artifacts / "index.png", tmp_path)
    listed = json.loads((site_dir / "index.json").read_text())["runs"]
    assert 'data-filter="ready"' in index
    assert f"{len(listed)} shown" in index
    assert re.findall(r'<a href="runs/([^"]+)\.html">', index) == [r["run_id"] for r in listed]

    drill = next(r for r in listed if r["mode"] == "no-automation" and r["outcome"] == "unaided")
    report = json.loads((site_dir / drill["json"]).read_text())
    page = open_page(browser, site_dir / drill["page"], artifacts / "run.png", tmp_path)
    text = _text(page)
    assert report["run_id"] in text
    for timing in report["timings"]:
        if timing["seconds"] is not None:
            assert f"{timing['name']} {_seconds(timing['seconds'])}" in text
    assert page.count("<svg") == 1 and 'class="chart timeline"' in page

    retention = open_page(browser, site_dir / "retention.html", artifacts / "retention.png", tmp_path)
    ret = json.loads((site_dir / "retention.json").read_text())
    cells = re.findall(r'<td class="(green|amber|red|never)">', retention)
    assert cells == [status for row in ret["people"] for status in row["status"]]
    for row in ret["people"]:
        assert f"{row['person']} {row['green']}/{row['amber']}/{row['red']}/{row['never']}" in _text(retention)
    for readiness in ret["readiness"]:
        assert f"{readiness['failure_mode']} {readiness['current']} {readiness['roster']}" in _text(retention)

    coverage = open_page(browser, site_dir / "coverage.html", artifacts / "coverage.png", tmp_path)
    summary = json.loads((site_dir / "coverage.json").read_text())["summary"]
    for key in ("claimed_share", "verified_share", "claimed_weighted_share", "verified_weighted_share"):
        assert f'id="{key.replace("_", "-")}">{summary[key] * 100:.1f}%</td>' in coverage
    for flag, count in summary["flags"].items():
        assert f"{flag}: {count}" in _text(coverage)


def test_the_checks_would_see_a_page_that_loads_or_fails(browser: str, site_dir: Path, tmp_path: Path) -> None:
    """Control: a copy of the index that loads an image from the network and throws is caught by both checks."""
    bad = site_dir / "control-bad.html"
    html = (site_dir / "index.html").read_text(encoding="utf-8")
    bad.write_text(
        html.replace("<body>", '<body><img src="https://example.com/x.png"><script>missing();</script>', 1),
        encoding="utf-8",
    )
    try:
        done = _chromium_run(browser, tmp_path, "--dump-dom", bad.resolve().as_uri())
    finally:
        bad.unlink()
    recorder = re.search(r'<pre id="page-errors">(.*?)</pre>', done.stdout, re.S)
    assert recorder is not None, done.stdout[:2000]
    assert "blocked: https://example.com/x.png" in recorder.group(1)
    assert "missing is not defined" in recorder.group(1)
    assert any(CONSOLE.search(line) for line in done.stderr.splitlines())
