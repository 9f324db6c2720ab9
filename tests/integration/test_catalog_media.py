"""Product images: signed uploads (good and bad), renditions with cache headers, reorder and removal,
the seeded demo pictures, variant pictures, and query counts of image fields."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from deploy.stack import ThreadedStack
from subgraphs.catalog.media import MAX_UPLOAD_BYTES, Signer, UploadGrant
from subgraphs.catalog.media_storage import LocalStorage
from tests.integration.helpers import admin_token, create_product, data, error_codes, register, user_error_codes
from tests.integration.shop_helpers import fewest_statements
from tests.support.graphql import gql

USER_ERRORS = "userErrors { code field message }"
UPLOAD = f"""mutation($input: CreateProductImageUploadInput!) {{
    createProductImageUpload(input: $input) {{ uploadUrl expiresAt {USER_ERRORS} }} }}"""
IMAGES = "id altText width height variantId url srcset jpg: url(width: 320, format: JPG)"
PRODUCT = f"query($id: ID!) {{ product(id: $id) {{ id images {{ {IMAGES} }} featuredImage {{ id }} }} }}"
REORDER = f"""mutation($input: ReorderProductImagesInput!) {{
    reorderProductImages(input: $input) {{ product {{ images {{ id }} }} {USER_ERRORS} }} }}"""
REMOVE = f"""mutation($input: RemoveProductImageInput!) {{
    removeProductImage(input: $input) {{ product {{ images {{ id }} }} {USER_ERRORS} }} }}"""


@pytest.fixture
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    return await admin_token(stack, demo_accounts)


def picture(width: int, height: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    image = Image.new(mode, (width, height), "red" if mode == "RGB" else 1)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


async def upload_url(stack: ThreadedStack, admin: str, product_id: str, **extra: Any) -> str:
    payload = data(await gql(stack.url("catalog"), UPLOAD, {"input": {"productId": product_id, **extra}}, admin))[
        "createProductImageUpload"
    ]
    assert payload["userErrors"] == [], payload
    url: str = payload["uploadUrl"]
    return url


async def images_of(stack: ThreadedStack, product_id: str) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = data(await gql(stack.url("catalog"), PRODUCT, {"id": product_id}))["product"][
        "images"
    ]
    return images


async def test_upload_then_renditions_at_stable_cacheable_urls(
    stack: ThreadedStack, admin: str, client: httpx.AsyncClient
) -> None:
    product = await create_product(stack, admin)
    url = await upload_url(stack, admin, product["id"], altText="A red block")
    put = await client.put(url, content=picture(2000, 1000), headers={"Content-Type": "image/png"})
    assert put.status_code == 201, put.text
    assert put.json()["userErrors"] == []
    (image,) = await images_of(stack, product["id"])
    assert (image["width"], image["height"], image["altText"]) == (2000, 1000, "A red block")
    assert image["url"].endswith(f"/media/{image['id']}/640.webp")
    assert [part.rsplit(" ", 1)[1] for part in image["srcset"].split(", ")] == [
        "160w",
        "320w",
        "640w",
        "960w",
        "1280w",
    ]

    first = await client.get(image["url"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/webp"
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    with Image.open(io.BytesIO(first.content)) as rendition:
        assert (rendition.format, rendition.size) == ("WEBP", (640, 320))
    again = await client.get(image["url"])
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    unchanged = await client.get(image["url"], headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304
    jpg = await client.get(image["jpg"])
    with Image.open(io.BytesIO(jpg.content)) as rendition:
        assert (rendition.format, rendition.size) == ("JPEG", (320, 160))
    # Only the listed widths exist: no one makes the server resize to any width it likes.
    base = image["url"].rsplit("/", 1)[0]
    for name in ("641.webp", "640.png", "640", "x.webp", "99999999999999999999.webp"):
        assert (await client.get(f"{base}/{name}")).status_code == 404, name
    assert (await client.get(image["url"].replace(image["id"], str(uuid.uuid4())))).status_code == 404
    # The URL is single use.
    replay = await client.put(url, content=picture(10, 10))
    assert replay.status_code == 403 and replay.json()["userErrors"][0]["code"] == "INVALID_TOKEN"
    assert len(await images_of(stack, product["id"])) == 1


def _bomb() -> bytes:
    return picture(6000, 6000, mode="1")  # 36 megapixels in a few kilobytes


BAD_UPLOADS: dict[str, tuple[bytes, int, str]] = {
    "not-an-image": (b"%PDF-1.4 definitely not a picture" * 10, 422, "INVALID"),
    "empty": (b"", 422, "REQUIRED"),
    "truncated": (picture(400, 400, "JPEG")[:600], 422, "INVALID"),
    "bmp-not-accepted": (picture(10, 10, "BMP"), 422, "INVALID"),
    "decompression-bomb": (_bomb(), 422, "INVALID"),
    "huge": (b"\xff" * (MAX_UPLOAD_BYTES + 1), 413, "TOO_LONG"),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
async def test_bad_uploads_get_clear_user_errors_and_change_nothing(
    stack: ThreadedStack, admin: str, client: httpx.AsyncClient, case: str
) -> None:
    body, status, code = BAD_UPLOADS[case]
    product = await create_product(stack, admin)
    url = await upload_url(stack, admin, product["id"])
    response = await client.put(url, content=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["image"] is None and [e["code"] for e in payload["userErrors"]] == [code]
    assert payload["userErrors"][0]["message"]
    assert await images_of(stack, product["id"]) == []


async def test_forged_and_expired_upload_urls_are_refused(
    stack: ThreadedStack, admin: str, client: httpx.AsyncClient
) -> None:
    product = await create_product(stack, admin)
    url = await upload_url(stack, admin, product["id"])
    body, signature = url.rsplit("/", 1)[1].split(".")
    base = url.rsplit("/", 1)[0]
    forged = Signer("not the secret").sign(UploadGrant(uuid.uuid4(), uuid.UUID(product["id"]), None, "", 2**40))
    expired = Signer(stack.settings.service_secret).sign(
        UploadGrant(uuid.uuid4(), uuid.UUID(product["id"]), None, "", 1)
    )
    for token in (forged, expired, f"{body}.{signature[:-2]}", f"{body}x.{signature}", "garbage", "a.b.c"):
        response = await client.put(f"{base}/{token}", content=picture(10, 10))
        assert response.status_code == 403, token
        assert response.json()["userErrors"][0]["code"] == "INVALID_TOKEN"
    assert await images_of(stack, product["id"]) == []


async def test_only_administrators_get_upload_urls(stack: ThreadedStack, admin: str) -> None:
    product = await create_product(stack, admin)
    shopper = await register(stack)
    for token in (shopper.access_token, None):
        result = await gql(stack.url("catalog"), UPLOAD, {"input": {"productId": product["id"]}}, token)
        assert error_codes(result) in (["FORBIDDEN"], ["UNAUTHENTICATED"]) and result["data"] is None
    unknown = data(await gql(stack.url("catalog"), UPLOAD, {"input": {"productId": str(uuid.uuid4())}}, admin))
    assert user_error_codes(unknown["createProductImageUpload"]) == ["PRODUCT_NOT_FOUND"]
    other = await create_product(stack, admin)
    wrong_variant = {"productId": product["id"], "variantId": other["id"]}
    refused = data(await gql(stack.url("catalog"), UPLOAD, {"input": wrong_variant}, admin))
    assert user_error_codes(refused["createProductImageUpload"]) == ["NOT_FOUND"]


async def test_admin_reorders_and_removes_images(stack: ThreadedStack, admin: str, client: httpx.AsyncClient) -> None:
    product = await create_product(stack, admin)
    for size in (30, 40, 50):
        response = await client.put(await upload_url(stack, admin, product["id"]), content=picture(size, size))
        assert response.status_code == 201
    ids = [i["id"] for i in await images_of(stack, product["id"])]
    assert len(ids) == 3
    reordered = data(
        await gql(stack.url("catalog"), REORDER, {"input": {"productId": product["id"], "imageIds": ids[::-1]}}, admin)
    )["reorderProductImages"]
    assert reordered["userErrors"] == [] and [i["id"] for i in reordered["product"]["images"]] == ids[::-1]
    for bad in (ids[:2], [*ids, ids[0]], [*ids[:2], str(uuid.uuid4())], ["nope", *ids[:2]]):
        refused = data(
            await gql(stack.url("catalog"), REORDER, {"input": {"productId": product["id"], "imageIds": bad}}, admin)
        )["reorderProductImages"]
        assert user_error_codes(refused) == ["INVALID"], bad
    assert [i["id"] for i in await images_of(stack, product["id"])] == ids[::-1]

    gone = (await images_of(stack, product["id"]))[0]
    assert (await client.get(gone["url"])).status_code == 200
    removed = data(await gql(stack.url("catalog"), REMOVE, {"input": {"id": gone["id"]}}, admin))["removeProductImage"]
    assert removed["userErrors"] == [] and [i["id"] for i in removed["product"]["images"]] == ids[::-1][1:]
    assert (await client.get(gone["url"])).status_code == 404
    again = data(await gql(stack.url("catalog"), REMOVE, {"input": {"id": gone["id"]}}, admin))["removeProductImage"]
    assert user_error_codes(again) == ["NOT_FOUND"]


SEEDED = """{ category(slug: "apparel") { products(first: 100) { edges { node { id name sku
    featuredImage { id url } variants { id selectedOptions { name value } image { id variantId url } } } } } } }"""


async def test_every_seeded_product_and_variant_has_a_drawn_picture(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    # Apparel: colours and sizes (Olive / S and Olive / M show Olive's picture).
    nodes = [e["node"] for e in data(await gql(stack.url("catalog"), SEEDED))["category"]["products"]["edges"]]
    # The seed's own (other tests in this worker's database add products of their own, without pictures).
    nodes = [n for n in nodes if re.fullmatch(r"[A-Z]{3}-\d{4}", n["sku"])]
    assert len(nodes) > 20
    for node in nodes:
        assert node["featuredImage"] is not None, node["name"]
        for variant in node["variants"]:
            assert variant["image"] is not None
            colour = {o["name"]: o["value"] for o in variant["selectedOptions"]}.get("Colour")
            if colour:  # every variant of one colour shows that colour's picture
                siblings = [
                    v
                    for v in node["variants"]
                    if {o["name"]: o["value"] for o in v["selectedOptions"]}.get("Colour") == colour
                ]
                assert variant["image"]["variantId"] in [v["id"] for v in siblings]
    first = nodes[0]["featuredImage"]["url"]
    drawn = await client.get(first)
    assert drawn.status_code == 200
    with Image.open(io.BytesIO(drawn.content)) as image:
        assert image.size == (640, 640)
    # Drawn deterministically: the same picture again (and from storage after the first time).
    assert (await client.get(first)).content == drawn.content


# A seeded category's products (other tests in this worker's database add products without pictures).
IMAGE_LISTING = """query($n: Int) { category(slug: "apparel") { products(first: $n) { edges { node { id
    images { url srcset } featuredImage { url } variants { image { url } } } } } } }"""


async def test_image_fields_cost_the_same_for_2_and_60_products(stack: ThreadedStack) -> None:
    async def listing(n: int) -> dict[str, Any]:
        listed: dict[str, Any] = data(await gql(stack.url("catalog"), IMAGE_LISTING, {"n": n}))["category"]
        return listed

    _, small = await fewest_statements(stack, ("catalog",), lambda: listing(2))
    large, large_cost = await fewest_statements(stack, ("catalog",), lambda: listing(60))
    assert sum(len(e["node"]["images"]) for e in large["products"]["edges"]) > 40
    assert 0 < large_cost["catalog"] == small["catalog"]


async def test_local_storage_round_trip_and_refuses_bad_keys(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("originals/abc", b"bytes", "image/png")
    assert await storage.get("originals/abc") == b"bytes"
    await storage.delete("originals/abc")
    assert await storage.get("originals/abc") is None
    await storage.delete("originals/abc")  # twice: fine
    for key in ("../etc/passwd", "originals/../../x", "/abs", "originals/", "Originals/x"):
        with pytest.raises(ValueError):
            await storage.get(key)
