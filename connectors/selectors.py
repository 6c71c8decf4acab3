from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from connectors.models import ConnectorInstance
from tenants.models import Tenant


def connector_list(*, tenant: Tenant) -> QuerySet[ConnectorInstance]:
    return ConnectorInstance.objects.filter(tenant=tenant).select_related("tenant")


def connector_get(*, tenant: Tenant, uuid) -> ConnectorInstance:
    """The tenant's connector, or 404: another tenant's connector does not exist for it."""
    return get_object_or_404(connector_list(tenant=tenant), uuid=uuid)


def connector_by_name(*, tenant: Tenant, unique_name: str) -> ConnectorInstance | None:
    return connector_list(tenant=tenant).filter(unique_name=unique_name).first()
