"""Browser-test plumbing for every page people use: Debian's chromium, driven by Selenium,
against pytest-django's live server.

- `browser` (one per test process): headless chromium with its console log kept;
- `page` (per test): that browser, cookies cleared, pointed at the live server, with
  helpers: `page.open(path)`, `page.wait_for(css)`, `page.fill(css, text)`,
  `page.sign_in_as(user)` (a session cookie, no form),
  `page.screenshot(name)` (PNG in var/screenshots/, or $PAYDESK_SCREENSHOT_DIR),
  `page.console()` (entries logged since the last call) and `page.csp_violations()`;
- `fresh_browser` (per test, for tests that drive `browser` themselves): no cookies and no
  storage for any site, a 1280×720 viewport, the network on; with `set_viewport` (an exact
  viewport, e.g. a 420 px side panel), `save_viewport` (a PNG of just the viewport),
  `set_offline` (a network blip), `wait_until(driver, condition)` and `host_page` (a
  loopback page on its own origin that frames a URL, as partner software would).

Third-party cookies are blocked, as in current browsers: an embedded page must do without.

The live server runs in a thread of the test process on http://localhost:<free port>
(a host name, not an IP address: WebAuthn refuses IP addresses), and pytest-django gives
its tests a transactional database, so the server sees their rows. Chromium and
chromedriver come from Debian (`make test` installs them when missing); a missing one
fails the test with the command to run, never skips it.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = Path(os.environ.get("PAYDESK_SCREENSHOT_DIR", REPO_ROOT / "var" / "screenshots"))
WAIT_S = 15.0  # generous for a loaded CI machine; waits poll, they never sleep this long


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"{names[0]} is not installed: the browser tests need Debian's chromium and chromium-driver "
        "(`make browsers`, or apt-get install chromium chromium-driver)."
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"profile.cookie_controls_mode": 1, "profile.block_third_party_cookies": True}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_binary("chromedriver")))
    driver.set_page_load_timeout(WAIT_S * 2)
    yield driver
    driver.quit()


@dataclass
class Page:
    driver: webdriver.Chrome
    base_url: str
    shots: list[Path] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def wait_for(self, css: str, timeout: float = WAIT_S):
        """The first element matching `css`, once it is visible (polled until a deadline)."""
        try:
            return WebDriverWait(self.driver, timeout).until(
                expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
            )
        except TimeoutException:
            raise AssertionError(f"{css!r} did not appear on {self.driver.current_url}") from None

    def wait_until(self, predicate, what: str, timeout: float = WAIT_S):
        try:
            return WebDriverWait(self.driver, timeout).until(lambda driver: predicate())
        except TimeoutException:
            raise AssertionError(f"timed out waiting for {what} on {self.driver.current_url}") from None

    def wait_for_path(self, prefix: str) -> None:
        self.wait_until(lambda: self.path.startswith(prefix), f"a page under {prefix}")

    def fill(self, css: str, text: str) -> None:
        element = self.wait_for(css)
        element.clear()
        element.send_keys(text)

    def click(self, css: str) -> None:
        self.wait_for(css).click()

    def text(self, css: str = "body") -> str:
        return self.wait_for(css).text

    def screenshot(self, name: str) -> Path:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        return path

    def sign_in_as(self, user) -> None:
        """Skip the sign-in form: a session made by Django's test client, as a cookie.
        (With PAYDESK_REQUIRE_MFA on, the admin then asks for the second factor.)"""
        from django.conf import settings
        from django.test import Client

        client = Client()
        client.force_login(user)
        if not self.driver.current_url.startswith(self.base_url):
            self.open("/static/admin/img/icon-yes.svg")  # a cookie needs a page of its site
        self.driver.add_cookie(
            {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
        )

    def console(self) -> list[dict]:
        """Console entries (JavaScript errors, CSP reports, …) since the last call."""
        return self.driver.get_log("browser")

    def csp_violations(self) -> list[str]:
        return [e["message"] for e in self.console() if "Content Security Policy" in e["message"]]


@pytest.fixture
def page(browser, live_server) -> Iterator[Page]:
    browser.delete_all_cookies()
    browser.get("about:blank")
    browser.get_log("browser")  # drop what earlier tests left
    yield Page(driver=browser, base_url=live_server.url)


@pytest.fixture
def screenshot_dir() -> Path:
    """Where a test that drives `browser` itself saves its screenshots."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR


@pytest.fixture
def admin_login(browser, live_server):
    """admin_login(username, password="pw"): signs in through the admin's own form."""

    def login(username: str, password: str = "pw") -> None:  # noqa: S107 - UserFactory's test password
        browser.delete_all_cookies()
        browser.get(f"{live_server.url}/admin/login/")
        browser.find_element(By.NAME, "username").send_keys(username)
        browser.find_element(By.NAME, "password").send_keys(password)
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        WebDriverWait(browser, WAIT_S).until(expected_conditions.presence_of_element_located((By.ID, "user-tools")))

    return login


def wait_for(driver, css: str):
    """The first element matching `css`, once present (polled until a deadline)."""
    return WebDriverWait(driver, WAIT_S).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


@pytest.fixture
def screenshot(browser):
    """screenshot(name) → the path of a PNG of the whole page, however long."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        # Chromium's DevTools protocol captures beyond the window.
        size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
        shot = browser.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path = SCREENSHOT_DIR / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    return take


@pytest.fixture
def log_in(admin_login):
    """log_in(username, password="pw"): the same as admin_login."""
    return admin_login


# --- For tests that drive `browser` themselves -------------------------------------------

DEFAULT_VIEWPORT = (1280, 720)


@pytest.fixture
def fresh_browser(browser) -> Iterator[webdriver.Chrome]:
    """The session's browser with no cookies or storage for any site, a 1280×720 viewport
    and the network on; put back as it was after the test."""
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
    set_viewport(browser, *DEFAULT_VIEWPORT)
    yield browser
    set_offline(browser, False)
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.get("about:blank")
    browser.get_log("browser")  # drop this test's console messages


def set_viewport(driver, width: int, height: int) -> None:
    """Make the page's viewport exactly width × height CSS pixels."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def set_offline(driver, offline: bool) -> None:
    """Drop (or restore) the browser's network, as a blip on the agent's connection would."""
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def save_viewport(driver, name: str) -> Path:
    """A PNG of what the viewport shows (set_viewport sets its size), in SCREENSHOT_DIR."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_until(driver, condition, *, timeout: float = WAIT_S, message: str = ""):
    """Poll `condition(driver)` every 20 ms until it returns something truthy (WebDriverWait)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(condition, message)


@pytest.fixture
def host_page():
    """host_page(title) -> base URL of a loopback web server on its own port (so its own
    origin, and another site than the live server's `localhost`) whose page frames
    `?src=<url>` in an iframe#embedded, as partner software embedding a Paydesk page would."""
    import html
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    servers = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            src = parse_qs(urlsplit(self.path).query).get("src", ["about:blank"])[0]
            body = (
                f"<!doctype html><html lang=en><title>{html.escape(self.server.title)}</title>"
                f"<h1>{html.escape(self.server.title)}</h1>"
                f'<iframe id="embedded" title="Payment console" src="{html.escape(src)}" '
                'width="420" height="640"></iframe>'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    def start(title: str) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.title = title
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
