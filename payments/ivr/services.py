"""Every write of the IVR sub-app: flows, partner references, and the pay sessions that
flows run on calls.

An IVR payment is a `payments.PaySession` with channel "ivr": its <Pay> status callbacks
and action request are stored and folded by payments.sessions.services (pay_callback_record), so
IVR sessions have the agent sessions' guarantees (unique by content, folded in order, a
final result is final).
"""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import Conflict
from connectors.models import ConnectorInstance
from payments.ivr import twiml
from payments.ivr.models import CARD_TYPES, IvrPayment, PaymentFlow, PaymentReference
from payments.ivr.prompts import PROMPTS, placeholder_errors
from payments.outbox import catalogue
from payments.sessions import callbacks, outbox
from payments.sessions.models import PayEvent, PaySession
from payments.sessions.rollup import count_created
from payments.sessions.services import SessionRequest, pay_callback_record
from tenants.models import Tenant
from tenants.services import Actor, audit_record

logger = logging.getLogger(__name__)

FLOW_FIELDS = frozenset(
    {
        "name", "connector", "is_active", "operation", "token_type", "currency", "amount_source", "amount_entry",
        "fixed_amount_minor", "min_amount_minor", "max_amount_minor", "language", "prompts", "max_attempts",
        "retry_on_decline", "timeout", "valid_card_types", "postal_code", "security_code", "min_postal_code_length",
        "description", "parameters",
    }
)  # fmt: skip
# What Paydesk keeps of a <Pay> status callback, action request or Studio report: the
# payment fields (docs/twilio-pay.md §3.2, §3.3). The caller's phone numbers and the other
# call parameters Twilio adds are not payment data and are not stored.
PAY_PARAMS = frozenset(
    {
        "AccountSid", "CallSid", "For", "ErrorType", "Attempt", "Result", "ProfileId", "PaymentToken",
        "PaymentConfirmationCode", "PaymentMethod", "PaymentCardNumber", "PaymentCardType", "ExpirationDate",
        "SecurityCode", "PaymentCardPostalCode", "BankAccountNumber", "BankRoutingNumber", "BankAccountType",
        "PaymentError", "PayErrorCode", "ConnectorError", "ChargeAmount", "Currency", "PaymentConnector",
        "TokenType", "DateCreated", "DateUpdated",
    }
)  # fmt: skip


# --- Flows ----------------------------------------------------------------------------


def payment_flow_create(*, tenant: Tenant, actor: Actor, **fields) -> PaymentFlow:
    _reject_unknown(fields)
    flow = PaymentFlow(tenant=tenant, **fields)
    _validate_flow(flow)
    with transaction.atomic():
        flow.save()
        audit_record(action="ivr_flow.created", actor=actor, tenant=tenant, target=flow, changes={"name": flow.name})
    return flow


def payment_flow_update(*, flow: PaymentFlow, actor: Actor, **fields) -> PaymentFlow:
    _reject_unknown(fields)
    with transaction.atomic():
        flow = PaymentFlow.objects.select_for_update().select_related("tenant").get(pk=flow.pk)
        changed = sorted(k for k, v in fields.items() if getattr(flow, k) != v)
        for name, value in fields.items():
            setattr(flow, name, value)
        _validate_flow(flow)
        flow.save()
        if changed:
            audit_record(
                action="ivr_flow.updated", actor=actor, tenant=flow.tenant, target=flow, changes={"fields": changed}
            )
    return flow


def _reject_unknown(fields: dict) -> None:
    unknown = set(fields) - FLOW_FIELDS
    if unknown:
        raise ValueError(f"a payment flow has no field(s) {sorted(unknown)}")


def _validate_flow(flow: PaymentFlow) -> None:
    errors: dict[str, list[str]] = {}
    try:
        flow.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    connector: ConnectorInstance | None = getattr(flow, "connector", None) if flow.connector_id else None
    if connector is not None and connector.tenant_id != flow.tenant_id:
        errors["connector"] = ["Choose one of this tenant's connectors."]
    if flow.min_amount_minor and flow.max_amount_minor and flow.min_amount_minor > flow.max_amount_minor:
        errors["max_amount_minor"] = ["The maximum is below the minimum."]
    if flow.operation == PaymentFlow.Operation.CHARGE and flow.amount_source == PaymentFlow.AmountSource.FIXED:
        amount = flow.fixed_amount_minor
        if not amount:
            errors["fixed_amount_minor"] = ["A fixed-amount flow needs its amount."]
        elif (flow.min_amount_minor and amount < flow.min_amount_minor) or (
            flow.max_amount_minor and amount > flow.max_amount_minor
        ):
            errors["fixed_amount_minor"] = ["The fixed amount is outside the minimum and maximum."]
    unknown_cards = [t for t in flow.valid_card_types.split() if t not in CARD_TYPES]
    if unknown_cards or not flow.valid_card_types.split():
        errors["valid_card_types"] = [f"Choose from: {' '.join(CARD_TYPES)}."]
    prompts = flow.prompts if isinstance(flow.prompts, dict) else None
    if prompts is None:
        errors["prompts"] = ["Prompts are a key → text object."]
    else:
        for key, text in prompts.items():
            if key not in PROMPTS or not isinstance(text, str):
                errors.setdefault("prompts", []).append(f"{key}: not a prompt of a payment flow.")
            else:
                errors.setdefault("prompts", []).extend(f"{PROMPTS[key][0]}: {e}" for e in placeholder_errors(text))
        if not errors.get("prompts"):
            errors.pop("prompts", None)
    params = flow.parameters
    if not isinstance(params, dict) or any(isinstance(v, dict | list) for v in params.values()):
        errors["parameters"] = ["Parameters are a flat name → value object."]
    if errors:
        raise ValidationError(errors)


# --- Partner references ---------------------------------------------------------------


def payment_reference_register(
    *, flow: PaymentFlow, reference: str, amount_minor: int, description: str = "", actor: Actor
) -> tuple[PaymentReference, bool]:
    """Register (or change, while unpaid) the amount a caller will pay for `reference`.
    Returns (reference, created)."""
    errors: dict[str, list[str]] = {}
    if flow.amount_source != PaymentFlow.AmountSource.REFERENCE or flow.is_tokenization:
        errors["flow"] = ["This flow does not take payments by reference."]
    if flow.min_amount_minor and amount_minor < flow.min_amount_minor:
        errors["amount"] = ["Below the flow's minimum amount."]
    if flow.max_amount_minor and amount_minor > flow.max_amount_minor:
        errors["amount"] = ["Above the flow's maximum amount."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        row = (
            PaymentReference.objects.select_for_update()
            .filter(tenant_id=flow.tenant_id, flow=flow, reference=reference)
            .first()
        )
        if row is not None and row.status != PaymentReference.Status.OPEN:
            raise Conflict("This reference has been paid; it cannot change.", code="reference_paid")
        created = row is None
        if created:
            row = PaymentReference(tenant_id=flow.tenant_id, flow=flow, reference=reference)
        row.amount_minor, row.currency, row.description = amount_minor, flow.currency, description
        row.registered_by_api_key = actor.api_key
        row.full_clean(exclude=["tenant", "flow", "paid_session", "registered_by_api_key"])
        row.save()
    return row, created


# --- Pay sessions of a flow -----------------------------------------------------------


def ivr_payment_start(
    *,
    flow: PaymentFlow,
    call_sid: str,
    amount_minor: int | None,
    pay_try: int = 1,
    reference: PaymentReference | None = None,
    via_studio: bool = False,
) -> IvrPayment:
    """The pay session for one <Pay> on a call. Idempotent: Twilio retrying the request
    that starts it gets the same session (the key is the flow, the call and the try)."""
    request = _session_request(flow, call_sid=call_sid, amount_minor=amount_minor, reference=reference)
    source = "studio" if via_studio else "ivr"
    key = f"{source}:{flow.uuid}:{call_sid}:{pay_try}"
    fingerprint = request.fingerprint(flow.connector)
    payment = _payment_by_key(flow, key)
    if payment is None:
        session = _session(flow, request, idempotency_key=key, fingerprint=fingerprint)
        try:
            with transaction.atomic():
                session.save()
                outbox.record(session, catalogue.PAY_SESSION_CREATED)
                count_created(session)  # the daily rollup, in the same transaction
                payment = IvrPayment.objects.create(
                    tenant=flow.tenant,
                    flow=flow,
                    pay_session=session,
                    reference=reference,
                    pay_try=pay_try,
                    via_studio=via_studio,
                )
                if not via_studio:
                    _record_pay_twiml(flow, session)
        except IntegrityError:  # Twilio's retry of the same request won the race
            payment = _payment_by_key(flow, key)
            if payment is None:
                raise
    if payment.pay_session.request_fingerprint != fingerprint:
        raise Conflict("This call already started a different payment.", code="ivr_payment_mismatch")
    return payment


def ivr_pay_session_preview(*, flow: PaymentFlow, amount_minor: int | None) -> PaySession:
    """The session a call would get, unsaved (nothing is written): for TwiML previews."""
    request = _session_request(flow, call_sid="CA" + "0" * 32, amount_minor=amount_minor, reference=None)
    return _session(flow, request, idempotency_key="preview", fingerprint="")


def _session_request(flow, *, call_sid, amount_minor, reference) -> SessionRequest:
    parameters = dict(flow.parameters or {})
    if reference is not None:
        parameters["reference"] = reference.reference
    charging = not flow.is_tokenization
    return SessionRequest(
        call_sid=call_sid,
        amount_minor=amount_minor if charging else None,
        currency=flow.currency,
        token_type="" if charging else flow.token_type,
        postal_code=flow.postal_code,
        security_code=flow.security_code,
        min_postal_code_length=flow.min_postal_code_length if flow.postal_code else None,
        valid_card_types=flow.valid_card_types,
        timeout=flow.timeout,
        description=(reference.description if reference and reference.description else flow.description),
        parameter=tuple(sorted((str(k), str(v)) for k, v in parameters.items())),
        channel=PaySession.Channel.IVR,
    )


def _session(flow, request: SessionRequest, *, idempotency_key: str, fingerprint: str) -> PaySession:
    values = {**request.__dict__, "require_matching_inputs": [], "parameter": dict(request.parameter)}
    session = PaySession(
        tenant=flow.tenant,
        connector=flow.connector,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        **values,
    )
    session.required_fields = callbacks.initial_required(session)
    return session


def _payment_by_key(flow: PaymentFlow, key: str) -> IvrPayment | None:
    return (
        IvrPayment.objects.select_related("pay_session", "pay_session__connector", "reference")
        .filter(tenant_id=flow.tenant_id, flow=flow, pay_session__idempotency_key=key)
        .first()
    )


def _record_pay_twiml(flow: PaymentFlow, session: PaySession) -> None:
    """The <Pay> we hand to Twilio, in the session's timeline like an agent's request."""
    attrs = {k: v for k, v in twiml.pay_attributes(flow, session).items() if v is not None}
    PayEvent.objects.create(
        tenant_id=session.tenant_id,
        session=session,
        direction=PayEvent.Direction.OUTBOUND,
        kind="pay-twiml",
        dedupe_key="pay-twiml",
        idempotency_key=session.idempotency_key,
        payload=attrs,
        response={"served": True},
        http_status=200,
    )


def ivr_pay_event_record(*, payment: IvrPayment, raw_params: dict[str, str], kind: str) -> bool:
    """Store a verified <Pay> status callback ("status-callback"), action request
    ("action") or Studio report ("studio-result") on the payment's session, and settle
    the reference it paid. Returns False for a duplicate."""
    params = {k: v for k, v in raw_params.items() if k in PAY_PARAMS}
    recorded = pay_callback_record(
        tenant_id=payment.tenant_id, session_id=payment.pay_session_id, raw_params=params, kind=kind
    )
    if params.get("Result") == "success" and payment.reference_id:
        settled = PaymentReference.objects.filter(
            pk=payment.reference_id, tenant_id=payment.tenant_id, status=PaymentReference.Status.OPEN
        ).update(status=PaymentReference.Status.PAID, paid_session=payment.pay_session, paid_at=timezone.now())
        if settled:
            logger.info("reference %s paid by session %s", payment.reference_id, payment.pay_session.uuid)
    return recorded


def ivr_studio_result_record(*, flow: PaymentFlow, raw_params: dict[str, str], amount_minor: int | None) -> IvrPayment:
    """A Studio flow exported from `flow` reports its Capture Payments result."""
    payment = ivr_payment_start(
        flow=flow, call_sid=raw_params["CallSid"], amount_minor=amount_minor, pay_try=1, via_studio=True
    )
    ivr_pay_event_record(payment=payment, raw_params=raw_params, kind="studio-result")
    return payment
