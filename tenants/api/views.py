from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.api.serializers import TenantSerializer
from tenants.auth import request_tenant


class TenantView(APIView):
    """The caller's own tenant."""

    scope_area = "tenant"

    @extend_schema(responses=TenantSerializer)
    def get(self, request):
        return Response(TenantSerializer(request_tenant(request)).data)
