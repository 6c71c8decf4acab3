"""The download link of an export job: whoever holds a valid link gets the file (it is
mailed to a schedule's recipients), so the link is signed, names its tenant and job, and
expires (PAYDESK_REPORTS_LINK_MAX_AGE, and with the file). Each download is audited."""

from django.http import FileResponse, HttpResponse
from django.views.decorators.http import require_GET

from payments.reports import services
from tenants.services import Actor


@require_GET
def download(request, token: str):
    try:
        job = services.download_resolve(token)
    except services.LinkExpired:
        return HttpResponse(
            "This download link has expired; ask for the report again.\n", status=410, content_type="text/plain"
        )
    actor = Actor(label="download-link", ip_address=request.META.get("REMOTE_ADDR"))
    handle = services.export_job_open(job=job, actor=actor)
    name = services.download_name(kind=job.kind, tenant=job.tenant, fmt=job.format, when=job.finished_at)
    response = FileResponse(handle, as_attachment=True, filename=name)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
