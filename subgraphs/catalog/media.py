"""Product images: signed upload URLs, checks of what is uploaded, renditions, and the demo drawings.

Uploads: an administrator asks the graph for an upload URL (``createProductImageUpload``); the URL
is served by the catalog app itself (``PUT /media/uploads/<token>`` with the image as the body), is
signed (HMAC of the service secret), expires after ``UPLOAD_TTL`` and works once. The upload answers
like a mutation payload: ``{"image": …, "userErrors": [...]}``. Nothing but the bytes goes through the
router, which needs no multipart support.

Renditions: ``GET /media/<id>/<width>.<webp|jpg>`` for the widths in ``WIDTHS`` only (a bounded set:
no one can make the server resize to every width), drawn once with Pillow, kept on the storage
backend, and served with ``Cache-Control: public, max-age=31536000, immutable``: an image is never
edited (a new upload is a new id), so its URLs never change meaning.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import logging
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError
from prometheus_client import Counter, Histogram
from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from subgraphs.kit.db import Database
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.telemetry import tracer

from .events import changed
from .media_storage import Storage
from .models import media_uploads, product_media, product_variants, products

log = logging.getLogger("shopgraph.catalog.media")

WIDTHS = (160, 320, 640, 960, 1280)
FORMATS = {"webp": ("WEBP", "image/webp"), "jpg": ("JPEG", "image/jpeg")}
ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 25_000_000  # decoded, an RGBA image of this size is 100 MB
MAX_IMAGES = 50  # per product
UPLOAD_TTL = 15 * 60
CACHE_CONTROL = "public, max-age=31536000, immutable"

UPLOADS = Counter("shopgraph_media_uploads", "Image uploads, by outcome (stored, refused reason).", ["outcome"])
RENDITIONS = Counter(
    "shopgraph_media_renditions",
    "Renditions served, by format and source (stored, resized, drawn).",
    ["format", "source"],
)
RENDITION_SECONDS = Histogram(
    "shopgraph_media_rendition_duration_seconds",
    "Time to make a rendition that was not stored yet (resize or demo drawing), by format.",
    ["format"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# Pillow refuses to open more than this many pixels (DecompressionBombError); between half and all
# of it, it only warns: the warning is made an error below.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True)
class UploadGrant:
    id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    alt_text: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Upload tokens: ``<payload>.<HMAC-SHA256>``, the key derived from the service secret."""

    def __init__(self, secret: str) -> None:
        self.key = hashlib.sha256(b"shopgraph media upload\0" + secret.encode()).digest()

    def sign(self, grant: UploadGrant) -> str:
        payload = {
            "id": str(grant.id),
            "p": str(grant.product_id),
            "v": str(grant.variant_id) if grant.variant_id else None,
            "a": grant.alt_text,
            "e": grant.expires,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{_b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())}"

    def verify(self, token: str, now: float | None = None) -> UploadGrant | None:
        """The grant a token carries, or None if it is forged, malformed or expired."""
        try:
            body, signature = token.split(".")
            expected = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                return None
            data = json.loads(_unb64(body))
            grant = UploadGrant(
                id=uuid.UUID(data["id"]),
                product_id=uuid.UUID(data["p"]),
                variant_id=uuid.UUID(data["v"]) if data["v"] else None,
                alt_text=str(data["a"]),
                expires=int(data["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return grant if grant.expires > (now or time.time()) else None


class UploadRefused(DomainError):
    pass


@dataclass(frozen=True)
class Inspected:
    format: str
    content_type: str
    width: int
    height: int


def inspect(data: bytes) -> Inspected:
    """What an upload is, or UploadRefused: not an image, a format we do not take, too many pixels
    (a decompression bomb), or truncated/corrupt."""
    if not data:
        raise UploadRefused(Code.REQUIRED, "The upload is empty.", ["body"])
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRefused(Code.TOO_LONG, f"An image is at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.", ["body"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt, (width, height) = image.format or "", image.size
                if fmt not in ACCEPTED:
                    raise UploadRefused(Code.INVALID, "Upload a JPEG, PNG, WebP or GIF image.", ["body"])
                if width * height > MAX_PIXELS:
                    raise UploadRefused(Code.INVALID, _too_many(width, height), ["body"])
                image.load()  # decodes it all: a truncated or corrupt file fails here
    except UploadRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRefused(Code.INVALID, "The image has too many pixels (a decompression bomb?).", ["body"]) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UploadRefused(Code.INVALID, "This is not an image we can read.", ["body"]) from exc
    return Inspected(fmt, ACCEPTED[fmt], width, height)


def _too_many(width: int, height: int) -> str:
    return f"The image is {width}x{height}: at most {MAX_PIXELS // 1_000_000} megapixels."


def resize(data: bytes, width: int, fmt: str) -> bytes:
    """A rendition of an original: at most ``width`` wide (never enlarged), upright, in ``fmt``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (width, width * 4))  # JPEG: decode at a reduced scale when it can
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((width, width * 4), Image.Resampling.LANCZOS)
            return _encode(image, fmt)


def _encode(image: Image.Image, fmt: str) -> bytes:
    pil_format = FORMATS[fmt][0]
    if pil_format == "JPEG" or image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if pil_format == "WEBP" and "A" in image.getbands() else "RGB")
    out = io.BytesIO()
    image.save(out, pil_format, quality=82, method=4) if pil_format == "WEBP" else image.save(
        out, pil_format, quality=82, optimize=True, progressive=True
    )
    return out.getvalue()


COLOURS = {
    "Black": (34, 34, 38),
    "White": (238, 236, 230),
    "Slate": (94, 108, 124),
    "Sage": (150, 170, 140),
    "Navy": (36, 52, 94),
    "Sand": (214, 192, 150),
    "Terracotta": (190, 100, 70),
    "Olive": (110, 116, 60),
    "Graphite": (70, 72, 76),
    "Ivory": (246, 240, 220),
}


def draw_demo(spec: dict[str, Any], width: int, fmt: str) -> bytes:
    """A demo picture, drawn (never downloaded): a soft gradient and a shape, both chosen by a hash of
    the product, in the variant's colour. The same spec always gives the same picture."""
    digest = hashlib.sha256(str(spec.get("seed", "")).encode()).digest()
    colour = COLOURS.get(str(spec.get("colour", "")), (digest[0], digest[1], digest[2]))
    hue = (digest[3] % 160 + 60, digest[4] % 160 + 60, digest[5] % 160 + 60)
    size = width
    image = Image.new("RGB", (size, size))
    top, bottom = _mix(hue, (250, 250, 250), 0.75), _mix(hue, (255, 255, 255), 0.35)
    gradient = Image.linear_gradient("L").resize((size, size))
    image = Image.composite(Image.new("RGB", (size, size), bottom), Image.new("RGB", (size, size), top), gradient)
    draw = ImageDraw.Draw(image)
    s = size / 100
    shape = digest[6] % 4
    box = (22 * s, 22 * s, 78 * s, 78 * s)
    if shape == 0:
        draw.ellipse(box, fill=colour)
    elif shape == 1:
        draw.rounded_rectangle(box, radius=12 * s, fill=colour)
    elif shape == 2:
        draw.polygon([(50 * s, 18 * s), (84 * s, 80 * s), (16 * s, 80 * s)], fill=colour)
    else:
        draw.rounded_rectangle((18 * s, 34 * s, 82 * s, 66 * s), radius=16 * s, fill=colour)
        draw.ellipse((38 * s, 20 * s, 62 * s, 44 * s), fill=_mix(colour, (255, 255, 255), 0.2))
    draw.ellipse((24 * s, 84 * s, 76 * s, 90 * s), fill=_mix(top, (0, 0, 0), 0.12))  # a shadow
    return _encode(image, fmt)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (round(a[0] * (1 - t) + b[0] * t), round(a[1] * (1 - t) + b[1] * t), round(a[2] * (1 - t) + b[2] * t))


class Media:
    """The catalog's media: one per process (``Runtime.parts``)."""

    def __init__(self, db: Database, storage: Storage, secret: str, base_url: str) -> None:
        self.db = db
        self.storage = storage
        self.signer = Signer(secret)
        self.base_url = base_url.rstrip("/")
        # Renditions are CPU work: at most two at once per process, whatever the traffic.
        self._work = asyncio.Semaphore(2)

    def url(self, media_id: uuid.UUID, width: int, fmt: str) -> str:
        return f"{self.base_url}/media/{media_id}/{width}.{fmt}"

    # --- uploads --------------------------------------------------------------------------

    async def grant_upload(
        self, product_id: uuid.UUID | None, variant_id: uuid.UUID | None, alt_text: str
    ) -> tuple[str, int]:
        """A signed, single-use upload URL for an image of this product (and variant); its expiry."""
        alt = alt_text.strip()
        if len(alt) > 500:
            raise DomainError(Code.TOO_LONG, "Alt text is at most 500 characters.", ["input", "altText"])
        async with self.db.read() as conn:
            found = (await conn.execute(select(products.c.id).where(products.c.id == product_id))).one_or_none()
            if found is None or product_id is None:
                raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
            if variant_id is not None:
                owner = (
                    await conn.execute(select(product_variants.c.product_id).where(product_variants.c.id == variant_id))
                ).scalar_one_or_none()
                if owner != product_id:
                    raise DomainError(Code.NOT_FOUND, "No such variant of this product.", ["input", "variantId"])
        expires = int(time.time()) + UPLOAD_TTL
        grant = UploadGrant(uuid.uuid4(), product_id, variant_id, alt, expires)
        return f"{self.base_url}/media/uploads/{self.signer.sign(grant)}", expires

    async def accept(self, token: str, data: bytes) -> Row[Any]:
        """Store an upload made to a signed URL: checked, then the original stored, then its row."""
        with tracer.start_as_current_span("media upload") as span:
            span.set_attribute("media.bytes", len(data))
            grant = self.signer.verify(token)
            if grant is None:
                UPLOADS.labels("bad_token").inc()
                raise UploadRefused(Code.INVALID_TOKEN, "This upload URL is invalid or has expired.", ["token"])
            try:
                inspected = await asyncio.to_thread(inspect, data)
            except UploadRefused as exc:
                UPLOADS.labels("refused").inc()
                log.warning("image upload refused for product %s: %s", grant.product_id, exc.message)
                raise
            key = f"originals/{grant.id}"
            async with self.db.transaction() as conn:
                used = (
                    await conn.execute(
                        pg_insert(media_uploads)
                        .values(id=grant.id, used_at=func.now())
                        .on_conflict_do_nothing(index_elements=["id"])
                        .returning(media_uploads.c.id)
                    )
                ).one_or_none()
                if used is None:
                    UPLOADS.labels("replayed").inc()
                    raise UploadRefused(Code.INVALID_TOKEN, "This upload URL was used already.", ["token"])
                locked = (
                    await conn.execute(select(products.c.id).where(products.c.id == grant.product_id).with_for_update())
                ).one_or_none()
                if locked is None:
                    raise UploadRefused(Code.PRODUCT_NOT_FOUND, "The product is gone.", ["token"])
                count, last = (
                    await conn.execute(
                        select(func.count(), func.coalesce(func.max(product_media.c.position), -1)).where(
                            product_media.c.product_id == grant.product_id
                        )
                    )
                ).one()
                if count >= MAX_IMAGES:
                    UPLOADS.labels("refused").inc()
                    raise UploadRefused(Code.INVALID, f"A product has at most {MAX_IMAGES} images.", ["token"])
                # The original first: a row never points at bytes that are not there.
                await self.storage.put(key, data, inspected.content_type)
                row: Row[Any] = (
                    await conn.execute(
                        insert(product_media)
                        .values(
                            id=grant.id,
                            product_id=grant.product_id,
                            variant_id=grant.variant_id,
                            position=last + 1,
                            alt_text=grant.alt_text,
                            storage_key=key,
                            content_type=inspected.content_type,
                            width=inspected.width,
                            height=inspected.height,
                            bytes=len(data),
                        )
                        .returning(product_media)
                    )
                ).one()
                await changed(conn, "Product", [grant.product_id])
            UPLOADS.labels("stored").inc()
            span.set_attribute("media.id", str(row.id))
            log.info(
                "image %s stored for product %s (%s, %dx%d, %d bytes, on %s)",
                row.id,
                grant.product_id,
                inspected.format,
                inspected.width,
                inspected.height,
                len(data),
                self.storage.name,
            )
            return row

    # --- admin ----------------------------------------------------------------------------

    async def reorder(self, product_id: uuid.UUID | None, ids: list[uuid.UUID]) -> None:
        """Put the product's images in this order: every one of them, each once."""
        async with self.db.transaction() as conn:
            locked = (
                await conn.execute(select(products.c.id).where(products.c.id == product_id).with_for_update())
            ).one_or_none()
            if locked is None:
                raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
            current = set(
                (
                    await conn.execute(select(product_media.c.id).where(product_media.c.product_id == product_id))
                ).scalars()
            )
            if len(ids) != len(set(ids)) or set(ids) != current:
                raise DomainError(
                    Code.INVALID, "Give every image of the product, each once, in the new order.", ["input", "imageIds"]
                )
            for position, media_id in enumerate(ids):
                await conn.execute(
                    update(product_media).where(product_media.c.id == media_id).values(position=position)
                )
            await changed(conn, "Product", [locked.id])

    async def remove(self, media_id: uuid.UUID | None) -> uuid.UUID:
        """Delete an image (row, original and renditions); returns its product's id."""
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(delete(product_media).where(product_media.c.id == media_id).returning(product_media))
            ).one_or_none()
            if row is None:
                raise DomainError(Code.NOT_FOUND, "No such image.", ["input", "id"])
            await changed(conn, "Product", [row.product_id])
        keys = [f"renditions/{row.id}/{w}.{f}" for w in WIDTHS for f in FORMATS]
        for key in ([row.storage_key] if row.storage_key else []) + keys:
            try:
                await self.storage.delete(key)
            except Exception:  # the row is gone: the bytes are unreachable garbage at worst
                log.warning("could not delete %s of image %s", key, row.id, exc_info=True)
        log.info("image %s of product %s removed", row.id, row.product_id)
        return uuid.UUID(str(row.product_id))

    # --- renditions -----------------------------------------------------------------------

    async def rendition(self, media_id: uuid.UUID, width: int, fmt: str) -> bytes | None:
        """The rendition's bytes (made and stored on first request); None if there is no such image."""
        if width not in WIDTHS or fmt not in FORMATS:
            return None
        key = f"renditions/{media_id}/{width}.{fmt}"
        stored = await self.storage.get(key)
        if stored is not None:
            RENDITIONS.labels(fmt, "stored").inc()
            return stored
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(product_media.c.storage_key, product_media.c.demo).where(product_media.c.id == media_id)
                )
            ).one_or_none()
        if row is None:
            return None
        with tracer.start_as_current_span("media rendition") as span:
            span.set_attributes({"media.id": str(media_id), "media.width": width, "media.format": fmt})
            async with self._work:
                started = time.perf_counter()
                if row.storage_key is not None:
                    original = await self.storage.get(row.storage_key)
                    if original is None:
                        log.error("the original of image %s is missing from %s", media_id, self.storage.name)
                        return None
                    data = await asyncio.to_thread(resize, original, width, fmt)
                    source = "resized"
                else:
                    data = await asyncio.to_thread(draw_demo, dict(row.demo), width, fmt)
                    source = "drawn"
                RENDITION_SECONDS.labels(fmt).observe(time.perf_counter() - started)
            await self.storage.put(key, data, FORMATS[fmt][1])
            RENDITIONS.labels(fmt, source).inc()
            log.debug("rendition %s %s of image %s %s (%d bytes)", width, fmt, media_id, source, len(data))
            return data
