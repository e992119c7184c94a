"""The HTML page in headless Chromium: a real click on a node shows its gradient, and a
screenshot of the page is not blank. Chromium is driven over the DevTools protocol."""

from __future__ import annotations

import base64
import io
import json
import re
import select
import shutil
import subprocess
import time
import urllib.request

import pytest

import chainrule as cr
import chainrule.viz as viz

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found: apt-get install chromium (.ci/run does) to run "
                             "the HTML page test")


class DevTools:
    """A minimal DevTools protocol client for one page."""

    def __init__(self, url: str) -> None:
        websocket = pytest.importorskip("websocket")
        self.ws = websocket.create_connection(url, timeout=20, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:  # skip events until our answer
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


@pytest.fixture
def page(tmp_path):
    """Start headless Chromium on a blank page; yield a function that opens a file in it."""
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-port=0",
         "--window-size=1200,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = process.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = found and found.group(1)
            if not line and process.poll() is not None:
                break
        if port is None:
            pytest.fail(f"Chromium did not start its DevTools server (exit {process.poll()})")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            target = next(t for t in json.load(answer) if t["type"] == "page")
        tools = DevTools(target["webSocketDebuggerUrl"])
        tools.call("Emulation.setDeviceMetricsOverride", width=1200, height=800, deviceScaleFactor=1,
                   mobile=False)

        def open_file(path) -> DevTools:
            tools.call("Page.navigate", url=f"file://{path}")
            deadline = time.monotonic() + 20
            while tools.evaluate("document.readyState + (document.getElementById('node-0') ? 1 : 0)") \
                    != "complete1":
                if time.monotonic() > deadline:
                    pytest.fail("the page did not finish loading in 20 s")
                time.sleep(0.05)
            return tools

        yield open_file
        tools.ws.close()
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stderr.close()


def test_clicking_a_node_shows_its_gradient_and_the_page_is_drawn(page, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    w1, b1 = cr.tensor(0.5, requires_grad=True), cr.tensor(0.1, requires_grad=True)
    w2, b2 = cr.tensor(0.8, requires_grad=True), cr.tensor(0.2, requires_grad=True)
    x, y = cr.tensor(2.0), cr.tensor(1.5)
    L = 0.5 * (w2 * cr.relu(w1 * x + b1) + b2 - y) ** 2
    path = viz.to_html(L, tmp_path / "graph.html", params={"w1": w1, "b1": b1, "w2": w2, "b2": b2})
    html = open(path).read()
    assert "<script src" not in html and "<link" not in html  # self-contained

    tools = page(path)
    index = tools.evaluate(
        "Array.from(document.querySelectorAll('.node')).findIndex("
        "  g => g.textContent.startsWith('w1'))")
    assert index >= 0
    box = tools.evaluate(
        f"(() => {{ const r = document.querySelectorAll('.node')[{index}].getBoundingClientRect();"
        f" return [r.left + r.width / 2, r.top + r.height / 2]; }})()")
    for kind in ("mousePressed", "mouseReleased"):  # a real click, through the input pipeline
        tools.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left",
                   clickCount=1)
    assert tools.evaluate("document.getElementById('detail-title').textContent") == "w1"
    assert float(tools.evaluate("document.getElementById('detail-grad').textContent")) == \
        pytest.approx(-0.672, abs=1e-5)
    assert tools.evaluate("document.getElementById('detail-shape').textContent") == "()"
    assert float(tools.evaluate("document.getElementById('detail-value').textContent")) == 0.5

    shot = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "screenshot.png").write_bytes(shot)
    pixels = image.imread(io.BytesIO(shot), format="png")[..., :3]
    assert pixels.shape[:2] == (800, 1200)
    assert pixels.std() > 0.05 and (pixels.mean(axis=2) < 0.5).mean() > 0.002  # boxes and text
