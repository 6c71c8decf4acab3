"""Refunding a phone payment from the admin, in a real browser: a finance user opens the
pay-session page, sees the refund form prefilled with what remains, reviews, confirms,
and lands back on the page with the refund listed; Stripe (localstripe) holds it."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from payments.refunds.models import Refund
from tenants.models import Role
from tests.browser.conftest import WAIT_S
from tests.factories import MembershipFactory, UserFactory
from tests.reconciliation.conftest import LocalStripe
from tests.refunds.conftest import paid, stripe_refunds

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stripe_objects(localstripe, settings) -> LocalStripe:
    settings.STRIPE_API_BASE_URL = localstripe
    return LocalStripe(localstripe)


def test_finance_refunds_part_of_a_payment_from_the_admin(
    browser, admin_login, live_server, world, stripe_objects, screenshot_dir
):
    session, intent = paid(world.acme.connectors["Stripe_Dev"], stripe_objects, amount=2000)
    finance = UserFactory(username="fiona-finance")
    MembershipFactory(user=finance, tenant=world.acme.tenant, role=Role.FINANCE)
    wait = WebDriverWait(browser, WAIT_S)

    admin_login("fiona-finance")
    browser.get(f"{live_server.url}/admin/payments/paysession/{session.pk}/change/")
    amount = wait.until(ec.presence_of_element_located((By.NAME, "refund-amount")))
    assert amount.get_attribute("value") == "20.00"  # prefilled with what remains
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", amount)
    browser.save_screenshot(str(screenshot_dir / "refund-1-form.png"))

    amount.clear()
    amount.send_keys("5.00")
    Select(browser.find_element(By.NAME, "refund-reason")).select_by_value("requested_by_customer")
    browser.find_element(By.NAME, "refund-note").send_keys("Parcel arrived damaged")
    browser.find_element(By.NAME, "refund-review").click()

    confirm = wait.until(ec.element_to_be_clickable((By.NAME, "refund-confirm")))
    assert confirm.get_attribute("value") == "Confirm refund of 5.00 USD"
    assert "Parcel arrived damaged" in browser.page_source
    assert stripe_refunds(stripe_objects, intent) == []  # nothing happens before the confirmation
    browser.save_screenshot(str(screenshot_dir / "refund-2-confirm.png"))
    confirm.click()

    message = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .success")))
    assert message.text.startswith("Refunded 5.00 USD (re_")
    panel = browser.find_element(By.CSS_SELECTOR, ".refunds-summary")
    assert "refunded 5.00 USD" in panel.text and "15.00 USD can be refunded" in panel.text
    assert browser.find_element(By.NAME, "refund-amount").get_attribute("value") == "15.00"
    whole = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1366, whole)  # the message at the top and the panel below, in one picture
    browser.save_screenshot(str(screenshot_dir / "refund-3-done.png"))

    [made] = stripe_refunds(stripe_objects, intent)
    refund = Refund.objects.get()
    assert (made["amount"], made["id"]) == (500, refund.stripe_refund_id)
    assert refund.requested_by == "user:fiona-finance" and refund.note == "Parcel arrived damaged"


def test_an_agent_sees_the_refunds_but_no_form(browser, admin_login, live_server, world, stripe_objects):
    session, _ = paid(world.acme.connectors["Stripe_Dev"], stripe_objects, amount=2000)
    agent = UserFactory(username="andy-agent")
    MembershipFactory(user=agent, tenant=world.acme.tenant, role=Role.AGENT)

    admin_login("andy-agent")
    browser.get(f"{live_server.url}/admin/payments/paysession/{session.pk}/change/")

    summary = WebDriverWait(browser, WAIT_S).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".refunds-summary"))
    )
    assert "20.00 USD can be refunded" in summary.text
    assert browser.find_elements(By.NAME, "refund-amount") == []
