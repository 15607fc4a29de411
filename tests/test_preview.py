"""`mirdata preview`: the page's content, and the page itself in a real headless Chromium."""

from __future__ import annotations

import base64
import fcntl
import html
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import write_simple_dataset
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.registry import task_names
from mirdata.release import render_preview, write_preview
from mirdata.release.preview import PREVIEW_MAX_SIDE, select_records
from mirdata.schema.record import Record, Region, format_options
from mirdata.store import MIRStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=2)
    store = MIRStore(root)
    raw = store.read_raw()
    raw[0]["difficulty"], raw[0]["pass_rate"] = "hard", 0.25
    raw[0]["caption"][0] = "A <b>red</b> square & a \"quote\" [r0]."
    store.write(raw)
    return root


def _above_4(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, chromium: str, profile: Path):
        # pipe ends numbered 10 and up, so that wiring them to 3 and 4 in the child cannot overwrite one another
        to_browser_r, self._to_browser = (_above_4(fd) for fd in os.pipe())
        self._from_browser, from_browser_w = (_above_4(fd) for fd in os.pipe())

        def wire_pipes() -> None:  # in the child, before exec
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "--window-size=1280,1000", "about:blank"],
            preexec_fn=wire_pipes, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> str:
        """A new tab showing `url`; returns once the page's document is there (not yet fully loaded)."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.navigate", session, url=url)  # answers once the navigation has committed
        return session

    def evaluate(self, session: str, expression: str):
        result = self.send("Runtime.evaluate", session, expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


WAIT_FOR_IMAGES = """
new Promise(done => {
  const check = () => {
    const imgs = [...document.images];
    if (document.readyState === 'complete' && imgs.every(i => i.complete)) {
      done(imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight, shownW: i.getBoundingClientRect().width,
                           record: i.closest('article').id})));
    } else setTimeout(check, 50);
  };
  check();
})"""

FILTER_TO = """
(() => {{
  const select = document.getElementById('task-filter');
  select.value = {task};
  select.dispatchEvent(new Event('change'));
  return {{visible: [...document.querySelectorAll('article.record')].filter(a => !a.hidden).map(a => a.dataset.task),
           shown: document.getElementById('shown').textContent}};
}})()"""


def test_records_are_taken_in_turn_from_every_task(dataset):
    records = MIRStore(dataset).read()
    chosen = select_records(records, 14)
    assert [r.task for r in chosen[:12]] == list(task_names())
    assert [r.task for r in chosen[12:]] == list(task_names()[:2])
    assert len({r.id for r in chosen}) == 14
    assert len(select_records(records, 1000)) == len(records)


def test_page_has_images_in_place_answer_stages_boxes_and_escaped_text(dataset):
    page, shown = render_preview(dataset, num=12, show_progress=False)
    assert shown == 12
    records = {r.id: r for r in MIRStore(dataset).read()}
    articles = re.findall(r'<article class="record" data-task="([^"]+)" id="([^"]+)">(.*?)</article>', page, re.S)
    assert len(articles) == 12
    for task, rid, body in articles:
        record = records[rid]
        assert record.task == task
        # the question's text pieces, with one figure between each
        question = re.search(r'<div class="question">(.*?)</div><ul', body, re.S).group(1)
        pieces = re.split(r"<figure>.*?</figure>", question, flags=re.S)
        assert [html.unescape(p) for p in pieces] == record.question.split("<image>")
        srcs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', body)
        assert [base64.b64decode(s) for s in srcs] == [(dataset / p).read_bytes() for p in record.images]
        assert re.findall(r"<li class=answer>(.*?)</li>", body) == [
            html.escape(o) for o in record.options if o.startswith(record.answer + ".")]
        assert len(re.findall(r"<rect data-region=", body)) == len(record.regions)
        for title in ("Summary", "Caption", "Text → region", "Region → region", "Conclusion"):
            assert f"<dt>{title}</dt>" in body
    # text is escaped, citations are coloured like their box
    assert "A &lt;b&gt;red&lt;/b&gt; square &amp; a &quot;quote&quot;" in page
    assert '<span class="cite" style="color:#e6194b">[r0]</span>' in page
    assert 'class="tag hard">hard · pass rate 0.25' in page
    assert page.count("<option value=") == 13  # "all tasks" + 12 tasks


def test_large_images_are_downscaled_but_boxes_keep_their_coordinates(tmp_path):
    root = tmp_path / "mir"
    store = MIRStore(root)
    paths = [store.save_image(f"images/view_3d/big_{k}.png", Image.new("RGB", (2000, 1000), "gray"))
             for k in range(2)]
    store.write([Record(
        id="big", category="spatial", task="view_3d", images=paths,
        question="Compare <image> with <image>.", options=format_options(["left", "right"]), answer="A",
        summary="s", caption=["a", "b"], text2region="[r0]", region2region="[r0] [r1]",
        conclusion="So the answer is A.", regions=[Region("r0", 0, [100, 200, 900, 800], "block"),
                                                  Region("r1", 1, [1500, 10, 1990, 990], "block")])])
    page, _ = render_preview(root, show_progress=False)
    embedded = re.findall(r'<img src="data:image/jpeg;base64,([^"]+)" width="2000" height="1000"', page)
    assert len(embedded) == 2
    with Image.open(io.BytesIO(base64.b64decode(embedded[0]))) as im:
        assert max(im.size) == PREVIEW_MAX_SIDE
    assert page.count('<svg viewBox="0 0 2000 1000"') == 2
    assert '<rect data-region="r1" x="1500" y="10" width="490" height="980"' in page


def test_bad_input_is_named(dataset, tmp_path):
    raw = MIRStore(dataset).read_raw()
    missing = dataset / raw[0]["images"][1]
    missing.unlink()
    with pytest.raises(MirdataError, match=rf"{re.escape(str(missing))}: no such image file"):
        render_preview(dataset, show_progress=False)
    missing.write_text("not an image")
    with pytest.raises(MirdataError, match=rf"{re.escape(str(missing))}: does not decode as an image"):
        render_preview(dataset, show_progress=False)
    with pytest.raises(MirdataError, match="records.jsonl: no such file"):
        render_preview(tmp_path / "empty", show_progress=False)


def test_cli_preview_writes_the_page(dataset, tmp_path):
    out = tmp_path / "page" / "preview.html"
    result = CliRunner().invoke(app, ["preview", str(dataset), "--out", str(out), "--num", "5"])
    assert result.exit_code == 0, result.output
    assert "previewed 5 records" in result.output
    assert out.read_text().count('<article class="record"') == 5


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package: chromium)")
def test_page_renders_in_headless_chromium_with_its_images(dataset, tmp_path):
    page = tmp_path / "preview.html"
    write_preview(dataset, page, num=24, show_progress=False)
    browser = DevTools(CHROMIUM, tmp_path / "profile")
    try:
        session = browser.open(page.as_uri())
        images = browser.evaluate(session, WAIT_FOR_IMAGES)
        assert len(images) == 48  # 24 records of 2 images
        assert all(i["w"] == 96 and i["h"] == 64 and i["shownW"] > 96 for i in images)
        filtered = browser.evaluate(session, FILTER_TO.format(task=json.dumps("view_3d")))
        assert filtered == {"visible": ["view_3d", "view_3d"], "shown": "2"}
        everything = browser.evaluate(session, FILTER_TO.format(task=json.dumps("")))
        assert everything["shown"] == "24"
        shot = browser.send("Page.captureScreenshot", session, format="png")["data"]
    finally:
        browser.close()
    screenshot = tmp_path / "preview.png"
    screenshot.write_bytes(base64.b64decode(shot))
    with Image.open(screenshot) as im:
        assert im.size[0] >= 1000
        colours = im.convert("RGB").getcolors(1 << 20)
    # the red squares of the images and the coloured boxes are on screen, not only text on white
    assert any(r > 150 and g < 80 and b < 80 for _, (r, g, b) in colours)
    assert len(colours) > 50
