"""Browser fixtures: headless Chromium driven by Selenium against pytest-django's
live_server (docs/testing.md §6).

Debian's `chromium` and `chromium-driver` packages are used as installed (`make test`
installs them with apt-get when missing); Selenium Manager is never asked to download
anything. One browser per test session (per xdist worker); each test starts with no
cookies, no storage, a 1280×720 window and a normal network.

Waiting is always on a condition (`wait_for`), polled every 20 ms with a deadline;
never a fixed sleep.
"""

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
DEFAULT_SIZE = (1280, 720)
WAIT_SECONDS = 10.0


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium(django_db_setup, django_db_blocker, live_server):
    """The session's headless Chromium (a selenium WebDriver). It goes before the live
    server and the test database do (hence the fixtures it asks for)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, driver = _binary("chromium", "chromium-browser"), _binary("chromedriver")
    if not (browser and driver):
        pytest.fail(
            "Browser tests need Debian's chromium and chromium-driver: `make test` installs them, "
            "or run `apt-get install -y chromium chromium-driver`."
        )
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not reach the network
    options = Options()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        "--lang=en-US",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={DEFAULT_SIZE[0]},{DEFAULT_SIZE[1]}",
    ):
        options.add_argument(argument)
    # Third-party cookies blocked, as in current browsers: an embedded page must do without.
    options.add_experimental_option(
        "prefs", {"profile.cookie_controls_mode": 1, "profile.block_third_party_cookies": True}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    web = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield web
    finally:
        web.quit()
        with django_db_blocker.unblock():
            _wait_for_live_server_connections_to_close()


def _wait_for_live_server_connections_to_close(deadline_s: float = 5.0) -> None:
    """The live server keeps a request thread, and its database connection, per open
    keep-alive socket of the browser. Once the browser has quit they close; wait for that,
    so the test database is not dropped under them ("being accessed by other users")."""
    import time

    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + deadline_s
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.02)  # poll interval, not a wait for an outcome


@pytest.fixture
def browser(chromium):
    """The session's browser, reset for this test."""
    chromium.execute_cdp_cmd("Network.enable", {})
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
    set_viewport(chromium, *DEFAULT_SIZE)
    yield chromium
    chromium.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    chromium.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    chromium.get("about:blank")
    chromium.get_log("browser")  # drop this test's console messages


def wait_for(driver, condition: Callable, *, timeout: float = WAIT_SECONDS, message: str = ""):
    """Poll `condition(driver)` until it returns something truthy (WebDriverWait)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(condition, message)


def set_viewport(driver, width: int, height: int) -> None:
    """Make the page's viewport exactly width × height CSS pixels (what a screenshot shows)."""
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


@pytest.fixture
def host_page():
    """host_page(title) -> base URL of a loopback web server on its own port (so its own
    origin, and another site than the live server's `localhost`) whose page frames
    `?src=<url>` in an iframe#embedded, as partner software embedding the console would."""
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


@pytest.fixture
def screenshot():
    """screenshot(driver, name) -> path: the visible page, saved under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(driver, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    return take
