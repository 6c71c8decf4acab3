"""A report's file as an HTTP response: CSV streamed chunk by chunk, XLSX from its
temporary file. Never cached: finance data."""

from django.http import FileResponse, StreamingHttpResponse

from payments.reports.services import Output


def file_response(output: Output):
    if output.chunks is not None:
        response = StreamingHttpResponse(output.chunks, content_type=output.content_type)
        response["Content-Disposition"] = f'attachment; filename="{output.filename}"'
    else:
        response = FileResponse(
            output.file, as_attachment=True, filename=output.filename, content_type=output.content_type
        )
    response["Cache-Control"] = "no-store"
    return response
