"""The landing page ("View site" in the admin) and the admin's branding."""

from django.urls import reverse


def test_the_landing_page_links_to_the_admin_the_console_and_the_api_docs(client, db):
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<title>Paydesk</title>" in html
    for name in ("admin:index", "console:index", "api-docs", "schema"):
        assert f'href="{reverse(name)}"' in html


def test_the_admin_says_paydesk_and_view_site_leads_to_the_landing_page(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "<title>Administration | Paydesk admin</title>" in html
    assert ">Paydesk</a>" in html
    assert '<a href="/">View site</a>' in html
