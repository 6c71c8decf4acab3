from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import Conflict
from payments.console import services
from payments.console.api.serializers import ConsoleLinkCreateSerializer, ConsoleLinkSerializer
from payments.sessions import services as session_services
from payments.sessions.api.views import IDEMPOTENCY_HEADER
from payments.sessions.models import PaySession
from payments.sessions.selectors import pay_session_get
from tenants.auth import request_actor, request_tenant


class ConsoleLinkView(APIView):
    """One-time links to the agent console, for embedding it in contact-centre software."""

    scope_area = "payments"

    @extend_schema(
        request=ConsoleLinkCreateSerializer, responses={201: ConsoleLinkSerializer}, parameters=[IDEMPOTENCY_HEADER]
    )
    def post(self, request):
        """A URL that opens one session's console page without a Paydesk login: once, within
        PAYDESK_CONSOLE_LINK_SECONDS, from a page whose origin the tenant's console settings
        allow to frame it. With the fields of a new session it starts that session on the
        call first (the same Idempotency-Key gives the same session, and a new link)."""
        tenant = request_tenant(request)
        actor = request_actor(request)
        incoming = ConsoleLinkCreateSerializer(data=request.data, context={"tenant": tenant})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        if "session" in data:
            session = pay_session_get(tenant=tenant, uuid=data["session"])
            if session.channel != PaySession.Channel.AGENT or session.is_terminal:
                raise Conflict(
                    "The console opens open agent sessions only.",
                    code="session_not_open",
                    fields={"session": [f"{session.channel} session, {session.status}"]},
                )
        else:
            session, _ = session_services.pay_session_start(
                tenant=tenant,
                connector=data["connector_instance"],
                request=data["request"],
                idempotency_key=request.headers.get("Idempotency-Key", "").strip()[:200] or None,
                actor=actor,
            )
        link, url = services.console_link_create(
            session=session, api_key=request.auth, agent_reference=data.get("agent_reference", ""), actor=actor
        )
        body = ConsoleLinkSerializer({"url": url, "expires_at": link.expires_at, "session": session}).data
        return Response(body, status=status.HTTP_201_CREATED)
