"""Where peer apps built on pay sessions plug in what they show of a session.

The pay-session app sits below reconciliation, reports and the apps that come after them,
so it never imports them. Each of those registers here from its AppConfig.ready(): a
field of the pay-session API representation, a panel of the pay-session admin page, a
form on that page (a panel that sees the request, with buttons posting to the app's own
admin view), a line of the page's summary, admin actions on the pay-session list, or a
listener told when sessions get their result. The pay-session serializer and admin read the
registry when they are used, so registration order is installation order
(docs/architecture.md).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin
from django.db.models import Q
from rest_framework import serializers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdminPanel:
    title: str  # the fieldset's heading on the pay-session page
    render: Callable  # session -> safe HTML, decorated for the admin (label, CSS class)


@dataclass(frozen=True)
class AdminForm:
    name: str
    title: str
    label: str
    render: Callable  # (request, session) -> safe HTML

    def bound(self, request) -> Callable:
        """The form as the admin shows a read-only field: a function of the session."""

        def panel(session):
            return self.render(request, session)

        panel.__name__ = self.name  # the admin's CSS class: field-<name>
        return admin.display(description=self.label)(panel)


_api_fields: dict[str, Callable[[], serializers.Field]] = {}
_admin_panels: dict[str, AdminPanel] = {}
_admin_forms: dict[str, AdminForm] = {}
_admin_actions: dict[str, Callable] = {}
_summary_lines: dict[str, tuple[str, Callable]] = {}
_result_listeners: dict[str, Callable] = {}
_admin_searches: dict[str, Callable] = {}


def register_api_field(name: str, make_field: Callable[[], serializers.Field]) -> None:
    """Add `name` to the pay-session API representation, after the app's own fields.
    `make_field` builds a fresh read-only field for each serializer instance."""
    _api_fields[name] = make_field


def register_admin_panel(name: str, *, title: str, label: str, render: Callable) -> None:
    """Show `render(session)` (safe HTML) in a section `title` of the pay-session page,
    before the event timeline."""

    def panel(session):
        return render(session)

    panel.__name__ = name  # the admin's CSS class: field-<name>
    _admin_panels[name] = AdminPanel(title=title, render=admin.display(description=label)(panel))


def register_admin_form(name: str, *, title: str, label: str, render: Callable) -> None:
    """Show `render(request, session)` (safe HTML) in a section `title` of the pay-session
    page, after the panels. Unlike a panel it sees the request, so it can offer a form to
    the roles allowed to use it. The page is one <form>: the section's inputs are posted
    with it (CSRF token included) by a submit button whose `formaction` is the app's own
    admin view, which then does the work through its services."""
    _admin_forms[name] = AdminForm(name=name, title=title, label=label, render=render)


def register_admin_actions(*actions: Callable) -> None:
    """Add admin actions (functions decorated with @admin.action) to the pay-session list."""
    for action in actions:
        _admin_actions[action.__name__] = action


def register_summary_line(name: str, *, label: str, render: Callable) -> None:
    """Add a line `label: render(session)` (safe HTML, or "" to leave it out) to the summary
    at the top of the pay-session page, after the session's own lines."""
    _summary_lines[name] = (label, render)


def register_admin_search(name: str, search: Callable[[str], "Q | None"]) -> None:
    """Let the pay-session list's search box find sessions by something a peer app holds
    (an IVR reference): `search(term)` returns a Q on PaySession, or None when the term
    cannot be one of its values. The list's tenant scoping still applies."""
    _admin_searches[name] = search


def register_result_listener(listener: Callable[[list["SessionResult"]], None]) -> None:
    """Call `listener(results)` after the commit that gave sessions their result (a
    payment succeeded or failed), with one SessionResult per session. It runs where the
    result was applied (a Celery task, or the web request when tasks run in-process), so
    it should only queue work; an exception it raises is logged, never passed on."""
    _result_listeners[f"{listener.__module__}.{listener.__qualname__}"] = listener


@dataclass(frozen=True)
class SessionResult:
    tenant_id: int
    connector_id: int
    session_id: int
    status: str


def api_fields() -> dict[str, serializers.Field]:
    return {name: make() for name, make in _api_fields.items()}


def admin_panels() -> list[AdminPanel]:
    return list(_admin_panels.values())


def admin_forms() -> list[AdminForm]:
    return list(_admin_forms.values())


def admin_actions() -> list[Callable]:
    return list(_admin_actions.values())


def summary_lines() -> list[tuple[str, Callable]]:
    return list(_summary_lines.values())


def admin_searches() -> list[Callable]:
    return list(_admin_searches.values())


def results_recorded(results: list[SessionResult]) -> None:
    """Tell every listener; one that fails is logged and the others still hear."""
    for name, listener in _result_listeners.items():
        try:
            listener(results)
        except Exception:
            logger.exception("result listener %s failed", name)
