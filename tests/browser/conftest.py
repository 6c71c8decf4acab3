"""Browser tests: Selenium driving Debian's chromium (headless) through chromium-driver,
against pytest-django's live_server. `make test` installs both packages when missing;
without them these tests fail saying so (never skipped).

Fixtures kept generic for every page's tests: `browser` (one Chromium per test session,
cookies cleared before each test), `screenshot` (saves a full-page PNG under
var/screenshots/ to look at), `log_in` (through the admin's login form).
"""

import base64
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as until
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WAIT_S = 15


@pytest.fixture(scope="session")
def _chromium():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver (make test does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def browser(_chromium, live_server):
    """The session's Chromium, on a clean slate, with `.url(path)` for the live server."""
    _chromium.delete_all_cookies()
    _chromium.base_url = live_server.url
    yield _chromium
    _chromium.delete_all_cookies()


def wait_for(driver, css: str):
    return WebDriverWait(driver, WAIT_S).until(until.presence_of_element_located((By.CSS_SELECTOR, css)))


@pytest.fixture
def screenshot(browser):
    """screenshot(name) → the path of a PNG of the whole page, var/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        # Chromium's DevTools protocol captures beyond the window: the whole page, however long.
        size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
        shot = browser.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    return take


@pytest.fixture
def log_in(browser):
    def go(username: str, password: str = "pw") -> None:
        browser.get(browser.base_url + "/admin/login/")
        wait_for(browser, "#id_username").send_keys(username)
        browser.find_element(By.ID, "id_password").send_keys(password)
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait_for(browser, "#user-tools")

    return go
