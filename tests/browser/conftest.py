"""Browser tests: Debian's chromium and chromium-driver (installed by `make test` when
missing), driven by Selenium against pytest-django's live server.

Screenshots go to $PAYDESK_SCREENSHOT_DIR when it is set (to look at them after a run),
else to the test's temporary directory."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 10


@pytest.fixture
def browser():
    """A headless Chromium (1366×1000), closed after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Browser tests need Debian's chromium and chromium-driver: run `make test` (it installs them).")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    folder = Path(os.environ.get("PAYDESK_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def admin_login(browser, live_server):
    """admin_login(username, password="pw"): logs in through the admin's own form."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    def login(username: str, password: str = "pw") -> None:  # noqa: S107 - UserFactory's test password
        browser.get(f"{live_server.url}/admin/login/")
        browser.find_element(By.NAME, "username").send_keys(username)
        browser.find_element(By.NAME, "password").send_keys(password)
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        WebDriverWait(browser, WAIT_S).until(ec.presence_of_element_located((By.ID, "user-tools")))

    return login
