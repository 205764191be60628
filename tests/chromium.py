"""Headless Chromium for the HTML report test (tests/test_html_report.py), standard library only.

Debian's ``chromium`` package is installed with apt-get when no browser is on PATH (the tests
run as root, like the SLURM test's set-up); nothing is downloaded from anywhere else.

The browser is driven through the Chrome DevTools protocol over ``--remote-debugging-pipe``:
JSON messages, each ended by a NUL byte, written to the browser's fd 3 and read from its fd 4
(no websocket, no extra package). Snakemake's report is a React app whose results appear only
after the reader clicks them, so ``probe_report`` loads the report and evaluates PROBE_JS in
it: the script uses the app the way a reader does (open a category, open a subcategory, press
each result's "view" button) and records, for every image shown, whether the browser decoded
it and at what size, and for every HTML or PDF result whether a frame showed it.
"""

import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

from apt_packages import apt_install

PACKAGES = ("chromium",)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--window-size=1600,1200", "--remote-debugging-pipe",
)  # fmt: skip
# Evaluated in the loaded report. Its globals: ``app`` (the React app), ``categories``
# (category -> subcategory -> result paths) and ``results`` (path -> entry with ``data_uri``
# and ``mime_type``). Resolves to the findings as a JSON string.
PROBE_JS = """
(async () => {
  const found = {done: false, menu: [], images: [], frames: [], errors: [], subcategories: []};
  window.addEventListener("error", (event) => found.errors.push(String(event.message)));
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const links = () => [...document.querySelectorAll("#app li a")];
  const menuItem = (label) => links().find((a) => a.textContent.trim() === label);
  async function until(test, ms) {
    for (let t = 0; t < ms; t += 50) { if (test()) return true; await sleep(50); }
    return false;
  }
  function transparentShare(img) {  // pixels left fully transparent: not decoded, for opaque PNGs
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0);
    const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let clear = 0;
    for (let k = 3; k < rgba.length; k += 4) if (rgba[k] === 0) clear += 1;
    return clear / Math.max(1, rgba.length / 4);
  }
  async function openResult(button) {
    button.click();
    await sleep(100);
    const path = app.state.resultPath, entry = results[path];
    if (app.state.content === "img") {
      const img = [...document.querySelectorAll("#app img")].find((i) => i.src === entry.data_uri);
      const decoded = img ? await img.decode().then(() => true, () => false) : false;
      found.images.push({path: path, shown: Boolean(img), decoded: decoded,
        width: img ? img.naturalWidth : 0, height: img ? img.naturalHeight : 0,
        transparent: decoded ? transparentShare(img) : 1});
    } else {
      const frame = [...document.querySelectorAll("#app iframe")].find(
        (f) => f.src === entry.data_uri);
      found.frames.push({path: path, mime: entry.mime_type, shown: Boolean(frame)});
    }
  }
  async function openCategory(category) {
    app.setView({navbarMode: "menu"});
    await sleep(100);
    const item = menuItem(category) || menuItem("Results");
    if (!item) return;
    item.click();
    await sleep(100);
    for (const sub of Object.keys(categories[category])) {
      const subItem = menuItem(sub);
      if (subItem) { subItem.click(); await sleep(100); }
      const buttons = [...document.querySelectorAll("#app table tbody tr")].map(
        (row) => row.querySelector("td:last-child a"));
      found.subcategories.push({category: category, subcategory: sub, rows: buttons.length});
      for (const button of buttons) {
        if (button && button.getAttribute("href") === "#") await openResult(button);
      }
      app.setView({navbarMode: "category", category: category});
      await sleep(100);
    }
  }
  try {
    await until(() => typeof app !== "undefined" && document.querySelector("#app li a"), 10000);
    found.menu = links().map((a) => a.textContent.trim());
    for (const category of Object.keys(categories)) await openCategory(category);
    found.done = true;
  } catch (error) {
    found.errors.push(String(error));
  }
  return JSON.stringify(found);
})()
"""


class BrowserError(RuntimeError):
    """No browser could be found or installed, or it did not answer as expected."""


def find_browser() -> str | None:
    """The first Chromium-family browser on PATH, or None."""
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


def ensure_chromium() -> str:
    """A Chromium executable, installed from Debian's archive with apt-get if none is on PATH."""
    if path := find_browser():
        return path
    apt_install(PACKAGES, BrowserError)
    if path := find_browser():
        return path
    raise BrowserError(f"after installing {PACKAGES}, none of {BROWSERS} is on PATH")


class DevTools:
    """One headless browser process, spoken to over the DevTools pipe; a context manager."""

    def __init__(self, browser: str, log: Path):
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # the browser reads commands on fd 3 and writes replies on fd 4 (bash: dash's
        # redirections take single-digit descriptors only)
        shell = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}'
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(
                ["bash", "-c", shell, browser, *FLAGS, "about:blank"],
                pass_fds=(to_browser, from_browser),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        os.close(to_browser)
        os.close(from_browser)
        self.log, self._buffer, self._id, self.events = log, b"", 0, []

    def __enter__(self) -> "DevTools":
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(BrowserError, OSError):  # it may have gone already
            self.send("Browser.close", timeout_s=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._out)
        os.close(self._in)

    def _message(self, deadline: float) -> dict:
        """The next message from the browser (a reply or an event)."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise BrowserError(f"no answer from the browser in time; log: {self.log}")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"the browser closed the pipe; log: {self.log}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout_s: float = 60) -> dict:  # fmt: skip
        """Send one command and return its result; events met meanwhile go to ``events``."""
        self._id += 1
        command = {"id": self._id, "method": method, "params": params or {}}
        if session is not None:
            command["sessionId"] = session
        os.write(self._out, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            message = self._message(deadline)
            if message.get("id") != self._id:
                self.events.append(message)
                continue
            if "error" in message:
                raise BrowserError(f"{method} failed: {message['error']}")
            return message["result"]

    def wait_event(self, method: str, timeout_s: float = 60) -> dict:
        """The first event ``method`` (already received or still to come)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events.append(self._message(deadline))


def probe_report(browser: str, report: Path, workdir: Path, timeout_s: float = 120) -> dict:
    """Open every result of ``report`` in its own UI in headless Chromium; what PROBE_JS saw.

    The answer has ``done`` (the probe went through every category), ``menu`` (the labels of
    the navigation menu), ``subcategories`` (one record per subcategory opened, with its number
    of result rows), ``images`` (per image result: ``path``, ``shown``, ``decoded``, ``width``,
    ``height`` and ``transparent``, the share of pixels left transparent: a PNG decoded only in
    part), ``frames`` (per HTML/PDF result: ``path`` and ``shown``) and ``errors``.
    """
    with DevTools(browser, workdir / "chromium.log") as chrome:
        target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attach = {"targetId": target, "flatten": True}
        session = chrome.send("Target.attachToTarget", attach)["sessionId"]
        chrome.send("Page.enable", session=session)
        chrome.send("Page.navigate", {"url": report.resolve().as_uri()}, session=session)
        chrome.wait_event("Page.loadEventFired", timeout_s=timeout_s)
        evaluate = {"expression": PROBE_JS, "awaitPromise": True, "returnByValue": True}
        answer = chrome.send("Runtime.evaluate", evaluate, session=session, timeout_s=timeout_s)
    if "exceptionDetails" in answer:
        raise BrowserError(f"the probe script failed: {answer['exceptionDetails']}")
    return json.loads(answer["result"]["value"])
