"""The console's pages. Views resolve who is asking (access.py), call one service or
selector, and render; wording comes from presenters.py.

Live updates: the session page polls its state URL every PAYDESK_CONSOLE_POLL_MS with
the version it shows (If-None-Match) and gets 304 when nothing changed. Polling, not
Server-Sent Events: a Paydesk web worker is a sync worker (gunicorn), and an SSE stream
would hold one for the whole call, one per agent; a poll holds it for a few
milliseconds. docs/console.md has the measurements.
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpResponseNotAllowed, HttpResponseNotModified, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import ServiceError
from payments.console import presenters, selectors, services
from payments.console.access import Access, member_required, page_token_required, wants_json
from payments.console.csp import allow_framing_by, console_csp
from payments.console.forms import NewPaymentForm

ACTIONS = ("capture", "complete", "cancel", "retry")


def _no_store(response):
    patch_cache_control(response, no_store=True, no_cache=True, max_age=0)
    return response


# --- Sign in ----------------------------------------------------------------------------

login = console_csp(
    auth_views.LoginView.as_view(
        template_name="console/login.html", redirect_authenticated_user=True, next_page="console:index"
    )
)
logout = console_csp(auth_views.LogoutView.as_view(next_page="console:login"))


# --- The agent's start page: recent sessions and a new payment ------------------------


@console_csp
@member_required
@require_http_methods(["GET", "POST"])
def index(request):
    access = request.console
    tenant, role = access.tenant(request.POST.get("tenant") or request.GET.get("tenant"))
    console_settings = selectors.console_settings_for(tenant=tenant)
    connectors = selectors.console_connectors(tenant=tenant)
    options = {"tenant": tenant, "console_settings": console_settings, "connectors": connectors}
    if request.method == "POST":
        form = NewPaymentForm(request.POST, **options)
        if form.is_valid():
            try:
                session = services.console_session_start(
                    tenant=tenant,
                    connector=form.connector_instance,
                    request=form.session_request,
                    idempotency_key=f"console:{form.cleaned_data['idempotency_key']}",
                    actor=access.actor,
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
                if exc.status != 503:
                    # Refused for good: a corrected form is a new request, with a new key.
                    # (Twilio unavailable: the same key retries the same request safely.)
                    data = request.POST.copy()
                    data["idempotency_key"] = NewPaymentForm(**options).fields["idempotency_key"].initial
                    form.data = data
            else:
                return redirect("console:session", uuid=session.uuid)
    else:
        form = NewPaymentForm(initial=NewPaymentForm.prefill(request.GET), **options)
    context = {
        "form": form,
        "tenant": tenant,
        "role": role,
        "tenants": sorted((t for t, _ in access.tenants.values()), key=lambda t: t.name),
        "sessions": [
            {
                "session": s,
                "amount_text": presenters.amount_text(s),
                "reference": presenters.safe_text(s.description),
                "own": s.started_by_user_id == request.user.pk,
            }
            for s in selectors.console_recent_sessions(tenant=tenant, user=request.user, role=role)
        ],
        "supervisor": role in selectors.SUPERVISOR_ROLES,
        "no_connectors": not connectors,
    }
    return _no_store(render(request, "console/index.html", context, status=400 if form.errors else 200))


# --- The session page -------------------------------------------------------------------


def _urls(access, session) -> dict:
    prefix = "console:embed-" if access.embedded else "console:session-"
    urls = {name: reverse(f"{prefix}{name}", kwargs={"uuid": session.uuid}) for name in ("state", *ACTIONS)}
    urls["page"] = "" if access.embedded else reverse("console:session", kwargs={"uuid": session.uuid})
    return urls


def _page_token(access, session) -> str:
    if not access.embedded:
        return ""
    return services.page_token_issue(link=access.grant.link, session=session)


def _page_state(session) -> dict:
    return presenters.page_state(
        session,
        selectors.console_session_events(session=session),
        version=selectors.console_session_version(session=session),
    )


def _render_session(request, session, *, status=200, error: str = ""):
    access = request.console
    state = _page_state(session)
    context = {
        "session": session,
        "state": state,
        "urls": _urls(access, session),
        "embedded": access.embedded,
        "token": _page_token(access, session),
        "poll_ms": settings.PAYDESK_CONSOLE_POLL_MS,
        "error": error,
        "is_retry": session.idempotency_key.startswith("console-retry:"),
        "reference": presenters.safe_text(session.description),
        # Messages live in a cookie: never read them in a frame, which must set no cookie.
        "flash": [] if access.embedded else list(messages.get_messages(request)),
    }
    response = render(request, "console/session.html", context, status=status)
    if access.embedded:
        allow_framing_by(response, selectors.console_settings_for(tenant=session.tenant).frame_origin_list)
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex"
    return _no_store(response)


@console_csp
@member_required
@require_GET
def session_page(request, uuid):
    return _render_session(request, request.console.session(uuid))


def _renewed(request, response, session):
    """An embedded page's token, renewed while the page is in use (and for a while after
    its session ended), so an open page keeps working and a forgotten one stops."""
    grant = request.console.grant
    if grant is None or not grant.needs_renewal:
        return response
    ended = session.completed_at.timestamp() if session.completed_at else None
    if ended is None or time.time() - ended < settings.PAYDESK_CONSOLE_PAGE_TOKEN_SECONDS:
        response[services.PAGE_TOKEN_HEADER] = services.page_token_issue(link=grant.link, session=session)
    return response


def _not_a_sign_of_life(request) -> None:
    """A poll is the page's doing, not the agent's: it must not keep a signed-in session
    alive past the idle limit (SESSION_COOKIE_AGE, renewed by every request that saves
    the session, SESSION_SAVE_EVERY_REQUEST). Its session is not saved, so the server
    keeps the expiry the agent's last own request set."""
    if hasattr(request, "session"):
        request.session.save = lambda must_create=False: None


def _state(request, uuid):
    if not request.console.embedded:
        _not_a_sign_of_life(request)
    session = request.console.session(uuid)
    version = selectors.console_session_version(session=session)
    etag = f'"{version}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()  # the usual answer: nothing new since the last poll
    else:
        events = selectors.console_session_events(session=session)
        response = JsonResponse(presenters.page_state(session, events, version=version))
    response["ETag"] = etag
    return _no_store(_renewed(request, response, session))


def _act(request, uuid, action):
    if action not in ACTIONS:
        return HttpResponseNotAllowed(["POST"])
    access = request.console
    session = access.session(uuid)
    error = None
    try:
        if action == "capture":
            field = request.POST.get("field", "")
            key = request.POST.get("idempotency_key", "")[:64] or None
            session = services.console_capture(session=session, field=field, idempotency_key=key, actor=access.actor)
        elif action == "complete":
            session = services.console_complete(session=session, actor=access.actor)
        elif action == "cancel":
            session = services.console_cancel(session=session, actor=access.actor)
        else:
            retry = services.console_retry(session=session, actor=access.actor)
            return _after_retry(request, retry)
    except ServiceError as exc:
        error = exc
        session.refresh_from_db()
    if wants_json(request):
        body = {"state": _page_state(session)}
        if error is not None:
            body["error"] = {"code": error.code, "message": presenters.safe_text(error.message), "fields": {}}
        response = JsonResponse(body, status=error.status if error is not None else 200)
        return _no_store(_renewed(request, response, session))
    if access.embedded:
        # No cookie in a frame: a form post without script answers with the page itself.
        return _render_session(request, session, error=presenters.safe_text(error.message) if error else "")
    if error is not None:
        messages.error(request, presenters.safe_text(error.message))
    return redirect("console:session", uuid=session.uuid)


def _after_retry(request, retry):
    access = request.console
    if access.embedded:
        # The page now works on the new session; its token names that session.
        return _render_session(request, retry)
    if wants_json(request):
        return JsonResponse({"redirect": reverse("console:session", kwargs={"uuid": retry.uuid})})
    return redirect("console:session", uuid=retry.uuid)


session_state = console_csp(member_required(require_GET(_state)))
session_action = console_csp(member_required(require_POST(_act)))


# --- Embedded ----------------------------------------------------------------------------


@console_csp
@require_GET
def embed_open(request, secret: str):
    """Open a one-time link: the session page, with its own token and no login."""
    try:
        link = services.console_link_redeem(secret=secret, ip_address=request.META.get("REMOTE_ADDR"))
    except services.LinkRefused as exc:
        response = render(request, "console/link_refused.html", {"message": exc.message}, status=410)
        if exc.link is not None:  # say it inside the partner's frame, not as a refused frame
            allow_framing_by(response, selectors.console_settings_for(tenant=exc.link.tenant).frame_origin_list)
        response["Referrer-Policy"] = "no-referrer"
        return _no_store(response)
    request.console = Access(
        mode="embed",
        actor=services.link_actor(link, ip_address=request.META.get("REMOTE_ADDR")),
        grant=services.PageGrant(link=link, session_uuid=str(link.session.uuid), issued_at=int(time.time())),
    )
    return _render_session(request, link.session)


embed_state = console_csp(page_token_required(require_GET(_state)))
embed_action = console_csp(page_token_required(require_POST(_act)))
