"""HTTP routes of the catalog's media (see media.py): signed uploads and cacheable renditions."""

from __future__ import annotations

import hashlib
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from subgraphs.kit.context import Runtime
from subgraphs.kit.domain import ErrorCode

from .media import CACHE_CONTROL, FORMATS, MAX_UPLOAD_BYTES, Media, UploadRefused


def media_of(request: Request) -> Media:
    runtime: Runtime = request.app.state.runtime
    media: Media = runtime.parts[Media]
    return media


def _refused(exc: UploadRefused, status: int) -> JSONResponse:
    error = {"code": exc.code.value, "field": exc.field, "message": exc.message}
    return JSONResponse({"image": None, "userErrors": [error]}, status)


def _too_big() -> UploadRefused:
    return UploadRefused(ErrorCode.TOO_LONG, f"An image is at most {MAX_UPLOAD_BYTES // 2**20} MB.", ["body"])


async def upload(request: Request) -> Response:
    """``PUT /media/uploads/<token>``, the image as the body: answers like a mutation payload."""
    media = media_of(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        return _refused(_too_big(), 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:  # no Content-Length (chunked): stop reading at the limit
            return _refused(_too_big(), 413)
    try:
        row = await media.accept(request.path_params["token"], bytes(body))
    except UploadRefused as exc:
        return _refused(exc, 403 if exc.code is ErrorCode.INVALID_TOKEN else 422)
    image = {
        "id": str(row.id),
        "productId": str(row.product_id),
        "variantId": str(row.variant_id) if row.variant_id else None,
        "width": row.width,
        "height": row.height,
        "url": media.url(row.id, 640, "webp"),
    }
    return JSONResponse({"image": image, "userErrors": []}, 201)


async def rendition(request: Request) -> Response:
    """``GET /media/<id>/<width>.<webp|jpg>``: immutable, so cacheable for a year by anyone."""
    try:
        media_id = uuid.UUID(request.path_params["media_id"])
        width_text, fmt = request.path_params["name"].split(".", 1)
        width = int(width_text)
    except ValueError:
        return Response("Not found", 404)
    if fmt not in FORMATS:
        return Response("Not found", 404)
    data = await media_of(request).rendition(media_id, width, fmt)
    if data is None:
        return Response("Not found", 404, headers={"Cache-Control": "no-store"})
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag, "Access-Control-Allow-Origin": "*"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, 200, media_type=FORMATS[fmt][1], headers=headers)


def routes() -> list[Route]:
    return [
        Route("/media/uploads/{token}", upload, methods=["PUT", "POST"]),
        Route("/media/{media_id}/{name}", rendition, methods=["GET", "HEAD"]),
    ]
