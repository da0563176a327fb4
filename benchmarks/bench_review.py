"""The review workspace in Debian's Chromium: 100 decisions on a 100-image queue by keyboard.

- Keystrokes: 95 approvals (`a`) and 5 rejections with a quick reason (`r`, `1`) are 105 keys; limit 110.
- Latency: from the deciding keydown to the next tile having the focus *and* the server having stored the
  decision (the tile's answer arrived), measured inside the page with `performance.now()`; median < 100 ms.
- For comparison, the same 100 decisions through the changelist's actions (tick, pick the action, Go; a
  rejection also asks for its reason on the next page): how many interactions and how long (informative).

The server is `make run`'s (`python -m pod_gateway.runner dev`: one gunicorn web worker and a task worker) on
a loopback port and the benchmark's own data directory and database; the browser is /usr/bin/chromium through
Playwright.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from pathlib import Path

from django.contrib.auth.models import Group, User
from PIL import Image as PILImage

from benchmarks import figure, gateway

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
IMAGES = 100
REJECT_EVERY = 20  # every 20th image is rejected with quick reason 1
KEYSTROKE_LIMIT = 110
MEDIAN_LIMIT_MS = 100.0
USERNAME = "bench-reviewer"
PASSWORD = "bench-reviewer-password"

# Records, inside the page, when each deciding key went down and when each tile settled with its answer.
PROBE = """
window.__bench = {keys: [], settled: {}};
document.addEventListener('keydown', (e) => {
  if (e.key === 'a' || /^[1-9]$/.test(e.key)) window.__bench.keys.push(performance.now());
}, true);
new MutationObserver((records) => {
  for (const r of records) {
    const el = r.target;
    if (el.dataset.state === 'approved' || el.dataset.state === 'rejected') {
      window.__bench.settled[el.dataset.imageId] = performance.now();
    }
  }
}).observe(document.getElementById('pod-tiles'), {subtree: true, attributes: true, attributeFilter: ['data-state']});
"""


def _png(n: int) -> io.BytesIO:
    buffer = io.BytesIO()
    PILImage.new("RGB", (256, 307), (n % 256, (n * 7) % 256, (n * 13) % 256)).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def _queue(tag: str) -> list[str]:
    from images.intake import image_intake
    from images.models import ImageSource

    return [
        image_intake(source=_png(n + (1000 if tag == "changelist" else 0)), filename=f"{tag}-{n}.png",
                     source_kind=ImageSource.UPLOADED, prompt=f"{tag} design {n}").pk
        for n in range(IMAGES)
    ]


def _clear() -> None:
    from images.models import Image

    Image.objects.all().delete()


def _reviewer() -> None:
    from images.models import QuickRejectReason

    user, _ = User.objects.get_or_create(username=USERNAME, defaults={"is_staff": True})
    user.is_staff = True
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name="reviewers"))
    if not QuickRejectReason.objects.exists():
        QuickRejectReason.objects.create(text="Blurry or soft focus", position=1)


def _sign_in(page, url: str) -> None:
    page.goto(f"{url}/admin/login/?next=/admin/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content")


def _workspace(page, url: str, ids: list[str]) -> tuple[int, list[float], float, float]:
    """By keyboard: the keystrokes, each decision's latency (ms), the requests' median (ms), the seconds in all."""
    page.goto(f"{url}/admin/review/")
    page.wait_for_selector(f"[data-image-id='{ids[0]}'][aria-selected='true']")
    # A reviewer starts once the first screen of pictures is there.
    page.wait_for_load_state("networkidle")
    page.evaluate(PROBE)
    keystrokes = 0
    started = time.perf_counter()
    for n, image_id in enumerate(ids):
        keys = ["r", "1"] if n % REJECT_EVERY == REJECT_EVERY - 1 else ["a"]
        for key in keys:
            page.keyboard.press(key)
            keystrokes += 1
        state = "rejected" if keys[0] == "r" else "approved"
        following = ids[n + 1] if n + 1 < len(ids) else image_id
        page.wait_for_function(
            "([id, state, following]) => document.querySelector(`[data-image-id='${id}']`).dataset.state === state"
            " && document.activeElement.dataset.imageId === following",
            arg=[image_id, state, following],
        )
    seconds = time.perf_counter() - started
    probe = page.evaluate("() => window.__bench")
    latencies = [probe["settled"][image_id] - pressed for image_id, pressed in zip(ids, probe["keys"], strict=True)]
    requests = page.evaluate("() => performance.getEntriesByType('resource')"
                             ".filter((e) => e.name.includes('/admin/review/decide/')).map((e) => e.duration)")
    return keystrokes, latencies, statistics.median(requests), seconds


def _changelist(page, url: str, ids: list[str]) -> tuple[int, float]:
    """The same decisions one by one through the changelist's actions; interactions and seconds."""
    interactions = 0
    started = time.perf_counter()
    # Each action answers with the same pending-only list again, without the images just decided.
    page.goto(f"{url}/admin/images/image/?status__exact=pending")
    for n in range(len(ids)):
        # The queue lists the newest first; which image gets which decision does not change the work.
        page.locator("input.action-select").first.check()
        reject = n % REJECT_EVERY == REJECT_EVERY - 1
        page.select_option("select[name=action]", "reject_images" if reject else "approve_images")
        page.click("button[name=index]")
        interactions += 3
        if reject:
            page.fill("textarea[name=reason]", "Blurry or soft focus")
            page.click("#pod-action-form input[type=submit]")
            interactions += 2
        page.wait_for_selector(".messagelist")
    return interactions, time.perf_counter() - started


def _gateway():
    """`make run` sharing this process's data directory and database; its URL."""
    # One reviewer's decisions in a minute are far over the default hourly approval limit.
    return gateway({**os.environ, "POD_ADMIN_PASSWORD": "bench-admin-password", "RATE_LIMIT_APPROVAL": "100000/h",
                    "RATE_LIMIT_READ": "100000/h", "RATE_LIMIT_ADMIN_LOGIN": "1000/5m"})


def run() -> list[str]:
    if not CHROMIUM.exists():
        return ["review workspace: skipped, /usr/bin/chromium is absent (apt-get install -y chromium)"]
    # Playwright's sync API keeps an event loop in this thread; the ORM calls between pages are synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with _gateway() as url:
            return _run(url)
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        _clear()


def _run(url: str) -> list[str]:
    from playwright.sync_api import sync_playwright

    from images.models import ImageTransition

    _reviewer()
    _clear()  # the queue holds this benchmark's images only (others may have left theirs)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(20_000)
            _sign_in(page, url)
            ids = _queue("workspace")
            keystrokes, latencies, request_median, workspace_seconds = _workspace(page, url, ids)
            stored = ImageTransition.objects.filter(image_id__in=ids, actor_label=USERNAME, via="admin").count()
            if stored != IMAGES:
                raise RuntimeError(f"{stored} of {IMAGES} workspace decisions were recorded")
            _clear()
            changelist_ids = _queue("changelist")
            interactions, seconds = _changelist(page, url, changelist_ids)
        finally:
            browser.close()
    median = statistics.median(latencies)
    return [
        figure(f"review workspace: keystrokes for {IMAGES} decisions", keystrokes, KEYSTROKE_LIMIT, unit="",
               detail=f"({IMAGES - IMAGES // REJECT_EVERY} × a, {IMAGES // REJECT_EVERY} × r 1)"),
        figure("review workspace: keypress to next tile focused and decision stored, median", median,
               MEDIAN_LIMIT_MS, unit=" ms",
               detail=f"(p90 {statistics.quantiles(latencies, n=10)[-1]:.0f} ms, max {max(latencies):.0f} ms; "
                      f"the request itself {request_median:.0f} ms)"),
        f"the same {IMAGES} decisions: workspace {workspace_seconds:.1f} s and {keystrokes} keys; changelist actions "
        f"{seconds:.1f} s and {interactions} clicks, selects and fields ({seconds / workspace_seconds:.1f}x as long)",
    ]
