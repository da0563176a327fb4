"""Non-API views of the publishing app."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from images.models import Image
from publishing.pipeline import PRINT_FILE_SALT


@require_GET
def print_file(request: HttpRequest, token: str, filename: str) -> FileResponse:
    """The print file behind a signed, expiring URL: how Printify fetches an upload by `url`.

    No login (Printify has none here); the signature is the credential, and it names one image only.
    """
    try:
        image_id = signing.loads(token, salt=PRINT_FILE_SALT, max_age=settings.PRINT_FILE_URL_MAX_AGE)
    except signing.BadSignature:
        raise Http404("No such print file") from None
    image = Image.objects.filter(id=image_id).first()
    if image is None or not image.file:
        raise Http404("No such print file")
    content_type = f"image/{(image.format or 'png').lower()}"
    return FileResponse(image.file.open("rb"), filename=filename, content_type=content_type)
