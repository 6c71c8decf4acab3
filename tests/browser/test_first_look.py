"""What a new user does first, in a real browser: the landing page, a paid session found by
the id the API printed, outcome first with its reconciliation `matched`, and the finance
dashboard in percentages and one named currency. Screenshots land in var/screenshots/."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import wait_for
from tests.factories import PaySessionFactory
from tests.payments import conftest as payments
from tests.payments.test_pay_sessions_e2e import Agent

desk = payments.desk  # the end-to-end fixture: live server, Twilio simulator, localstripe

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_landing_page_leads_to_the_admin_and_the_api_docs(browser, live_server, screenshot, db):
    browser.get(live_server.url + "/")
    assert browser.title == "Paydesk"
    links = {a.text.split("\n")[0]: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "ul a")}
    assert links["Admin"].endswith("/admin/") and links["API documentation"].endswith("/api/docs/")
    screenshot("landing")

    browser.get(links["Admin"])
    assert "Paydesk" in wait_for(browser, "#site-name").text


@pytest.fixture
def paid(desk, api_for, settings):
    """A real payment through the API, the Twilio simulator and localstripe, reconciled by
    its result ("reconcile soon"), plus some history for the dashboard."""
    settings.PAYDESK_RECONCILIATION_AFTER_RESULT = True
    tw = desk.world.acme
    tw.tenant.time_zone = "America/New_York"
    tw.tenant.save()
    agent = Agent(desk, api_for(tw.raw_key))
    session = agent.start(charge_amount="12.50", currency="USD")
    agent.enter_card()
    assert agent.complete()["status"] == "succeeded"
    now = timezone.now()
    connector = tw.connectors["Stripe_Dev"]
    for days, amount, status, result in [
        (1, 4000, "succeeded", "success"),
        (1, 2500, "failed", "payment-connector-error"),
        (2, 9900, "succeeded", "success"),
        (3, 1999, "failed", "caller-hung-up"),
        (4, 15000, "succeeded", "success"),
    ]:
        s = PaySessionFactory(tenant=tw.tenant, connector=connector, amount_minor=amount, status=status, result=result)
        type(s).objects.filter(pk=s.pk).update(created_at=now - timedelta(days=days))
    PaySessionFactory(tenant=tw.tenant, connector=connector, amount_minor=7000, currency="EUR", status="succeeded")
    return session


def test_a_paid_session_is_found_by_its_uuid_and_shows_its_outcome_and_matched(
    browser, live_server, screenshot, log_in, paid, desk
):
    log_in(desk.world.acme.owner.username)
    browser.get(live_server.url + "/admin/payments/paysession/")
    search = wait_for(browser, "#searchbar")
    search.send_keys(paid["id"])
    search.submit()
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1 and "12.50 USD" in rows[0].text
    screenshot("search-by-uuid")

    rows[0].find_element(By.CSS_SELECTOR, "th a, td a").click()
    summary = wait_for(browser, "table.pay-summary")
    text = summary.text
    assert "Succeeded" in text and "12.50 USD" in text and "Visa •••• 4242" in text and "Paid" in text
    assert "Matched" in summary.find_element(By.CSS_SELECTOR, "a.reconciliation-state").text.capitalize()
    code = summary.find_element(By.CSS_SELECTOR, "a[href^='https://dashboard.stripe.com/test/payments/pi_']")
    assert code.text.startswith("pi_")

    panel = browser.find_element(By.CSS_SELECTOR, "table.reconciliation-panel")
    assert "matched" in panel.text.lower() and "12.50 USD" in panel.text
    assert browser.find_element(By.LINK_TEXT, "Reconcile now").is_displayed()
    timeline = browser.find_element(By.CSS_SELECTOR, "table.pay-event-timeline")
    assert "payment-card-number" in timeline.text and "Result=success" in timeline.text
    folded = browser.find_elements(By.CSS_SELECTOR, "fieldset.collapse details, details")
    assert folded and not any(d.get_attribute("open") for d in folded)  # the request parameters start folded
    # Outcome first: the summary comes before the timeline, the timeline before the parameters.
    y = {
        name: browser.find_element(By.CSS_SELECTOR, css).location["y"]
        for name, css in [("summary", "table.pay-summary"), ("timeline", "table.pay-event-timeline")]
    }
    params_y = folded[0].location["y"]
    assert y["summary"] < y["timeline"] < params_y
    screenshot("pay-session")

    folded[0].find_element(By.TAG_NAME, "summary").click()
    assert browser.find_element(By.CSS_SELECTOR, ".field-idempotency_key").is_displayed()
    screenshot("pay-session-request-parameters-open")


def test_the_finance_dashboard_reads_in_percentages_and_one_named_currency(
    browser, live_server, screenshot, log_in, paid, desk
):
    log_in(desk.world.acme.owner.username)
    browser.get(live_server.url + "/admin/reports/financedashboard/")
    banner = wait_for(browser, ".currency-banner")
    assert "USD" in banner.text
    totals = browser.find_element(By.CSS_SELECTOR, ".finance-dashboard table").text
    assert "%" in totals and "USD" in totals
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "svg text") if t.text.endswith(" USD")]
    assert ticks and all(t.split()[0].replace(",", "").isdigit() for t in ticks)  # round ticks
    screenshot("dashboard")

    browser.find_element(By.LINK_TEXT, "EUR").click()
    WebDriverWait(browser, 15).until(
        lambda b: "for EUR payments" in b.find_element(By.CSS_SELECTOR, ".currency-banner").text
    )
    screenshot("dashboard-eur")
