"""Our router and Apollo Gateway over our four real subgraphs, with the storefront's real operations.

Both gateways serve the same supergraph (the checked-in ``schema/supergraph.graphql``,
pointed at the running stack) and must return identical JSON: ``data`` exactly, in
the same field order, and the same errors (message, path, extensions; in any order).
Our router gets the shopper's access token and verifies it; Apollo Gateway cannot
verify our JWTs, so it gets the internal token our router would forward for that
shopper and passes it on.

Reads run against one shared state on both. Mutations change state, so each
gateway gets its own shopper with an identical history, and the responses are
compared with generated ids, numbers, timestamps and tokens masked.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from deploy.stack import ThreadedStack
from tests.e2e.storefront import (
    ADDRESS,
    PASSWORD,
    Json,
    Shopper,
    Storefront,
    anonymous_internal_token,
    comparable,
    delete_orders,
    insert_orders,
    normalise,
)
from tests.integration.shop_helpers import pay_order

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Shop:
    """State both gateways read: products, a shopper with orders and a cart, an admin."""

    secret: str
    admin: Shopper
    shopper: Shopper
    stranger: Shopper  # signed in, no orders, empty cart
    ghost: Shopper  # an order of a product the catalog does not know (deleted behind the graph's back)
    category: Json
    products: list[Json]
    orders: list[Json]
    tag: str  # in every product name made here, for searches


async def _create_products(ours: Storefront, admin: Shopper, category_id: str, tag: str) -> list[Json]:
    products = []
    for i, (name, price) in enumerate([("Lamp", "12.50"), ("Mug", "3.99"), ("Chair", "129.00")]):
        variables = {
            "input": {
                "sku": f"DIFF-{tag}-{i}",
                "name": f"{tag} {name}",
                "description": f"The {name.lower()} of the differential tests.",
                "price": price,
                "stock": 1000,
                "imageUrl": f"https://img.example/{tag}/{i}.jpg",
                "categoryId": category_id,
            }
        }
        created = await ours.data("AdminCreateProduct", variables, admin.access_token)
        products.append(created["createProduct"]["product"])
    return products


@pytest.fixture(scope="module")
async def shop(
    stack: ThreadedStack, ours: Storefront, demo_accounts: dict[str, tuple[str, str]]
) -> AsyncIterator[Shop]:
    admin = await ours.login(*demo_accounts["ADMIN"])
    category = (await ours.data("CategoryNav"))["categories"][0]
    tag = "Diff" + secrets.token_hex(4)
    products = await _create_products(ours, admin, category["id"], tag)
    shopper = await ours.register("Robin Reader")
    token = shopper.access_token
    await ours.data("AddAddress", {"input": {**ADDRESS, "isDefault": True}}, token)
    orders = []
    for cart in ({0: 2, 1: 1}, {2: 1, 1: 3}):
        for index, quantity in cart.items():
            await ours.data("AddToCart", {"input": {"productId": products[index]["id"], "quantity": quantity}}, token)
        checkout = {"idempotencyKey": secrets.token_hex(8), "shippingAddress": ADDRESS}
        orders.append((await ours.data("Checkout", {"input": checkout}, token))["checkout"]["order"])
    # Paid as a shopper pays (the test provider's page, card 4242): no order is marked paid by hand.
    await pay_order(stack, token, orders[0]["id"])
    await ours.data("AddToCart", {"input": {"productId": products[0]["id"], "quantity": 1}}, token)
    stranger = await ours.register("Sam Stranger")
    ghost = await ours.register("Gus Ghost")
    unknown = {"id": str(uuid.uuid4()), "sku": "GONE-1", "name": "Gone", "price": {"amount": "5.00"}}
    ghost_lines = [[products[0] | {"quantity": 1}, unknown | {"quantity": 2}]]
    database = stack.apps["orders"].state.runtime.db
    stack.run(insert_orders(database, ghost.id, 1, ghost_lines, status="DELIVERED"))
    yield Shop(stack.settings.service_secret, admin, shopper, stranger, ghost, category, products, orders, tag)
    stack.run(delete_orders(database, ghost.id))


def _tokens(shop: Shop, who: str) -> tuple[str | None, str]:
    """(token for our router, token for Apollo Gateway) of ``who``."""
    if who == "anonymous":
        return None, anonymous_internal_token(shop.secret)
    user: Shopper = getattr(shop, who)
    return user.access_token, user.internal_token(shop.secret)


async def _both(
    ours: Storefront, theirs: Storefront, shop: Shop, operation: str, variables: Json, who: str
) -> tuple[Json, Json]:
    mine, internal = _tokens(shop, who)
    return await ours.send(operation, variables, mine), await theirs.send(operation, variables, internal)


@dataclass(frozen=True)
class Case:
    operation: str
    who: str
    variables: Callable[[Shop], Json]
    # What our answer must show, so that two identical failures never pass as agreement.
    expect: Callable[[Json], bool]
    # An administrators' field (@requiresScopes): our router refuses it itself, Apollo Gateway
    # (which cannot enforce the directive) leaves it to the subgraph (see refused_alike).
    refused: bool = False


def _no_errors(result: Json) -> bool:
    return "errors" not in result and result.get("data") is not None


def _error(code: str, path: list[str | int]) -> Callable[[Json], bool]:
    def check(result: Json) -> bool:
        return any(
            (e.get("extensions") or {}).get("code") == code and e.get("path") == path for e in result.get("errors", [])
        )

    return check


def _data_at(*path: str | int, equals: Any = ...) -> Callable[[Json], bool]:
    def check(result: Json) -> bool:
        value: Any = result.get("data")
        for key in path:
            if value is None:
                return False
            value = value[key]
        return value == equals if equals is not ... else bool(value)

    return check


def _none(_: Shop) -> Json:
    return {}


def refused_alike(mine: Json, apollo: Json) -> bool:
    """The same refusal: our router's UNAUTHORIZED_FIELD_OR_TYPE (it enforces @requiresScopes
    before calling any subgraph) where Apollo Gateway passes on the subgraph's FORBIDDEN, at the
    same paths, with the same data."""

    def at(result: Json, code: str) -> list[Any]:
        errors = result.get("errors") or []
        return sorted((e.get("path") for e in errors if (e.get("extensions") or {}).get("code") == code), key=str)

    return (
        mine.get("data") == apollo.get("data")
        and len(mine.get("errors") or []) == len(apollo.get("errors") or [])
        and at(mine, "UNAUTHORIZED_FIELD_OR_TYPE") == at(apollo, "FORBIDDEN") != []
    )


READS: dict[str, Case] = {
    "product-list": Case("ProductList", "anonymous", _none, _data_at("products", "edges")),
    "product-list-search": Case(
        "ProductList", "shopper", lambda s: {"search": s.tag, "first": 10}, _data_at("products", "totalCount", equals=3)
    ),
    "product-list-filter-sort": Case(
        "ProductList",
        "anonymous",
        lambda s: {
            "first": 5,
            "filter": {"categoryId": s.category["id"], "minPrice": "3.00", "maxPrice": "200", "inStock": True},
            "sortKey": "PRICE",
            "reverse": True,
        },
        _data_at("products", "edges"),
    ),
    "product-list-by-name": Case(
        "ProductList", "anonymous", lambda s: {"first": 7, "sortKey": "NAME"}, _data_at("products", "edges")
    ),
    "product-list-bad-page-size": Case("ProductList", "anonymous", lambda s: {"first": -1}, lambda r: "errors" in r),
    "product-detail": Case(
        "ProductDetail", "anonymous", lambda s: {"id": s.products[0]["id"]}, _data_at("product", "category")
    ),
    "product-detail-unknown-id": Case(
        "ProductDetail", "anonymous", lambda s: {"id": str(uuid.uuid4())}, _data_at("product", equals=None)
    ),
    "product-detail-by-sku": Case(
        "ProductDetailBySku", "shopper", lambda s: {"sku": s.products[2]["sku"]}, _data_at("product", "price")
    ),
    "product-detail-unknown-sku": Case(
        "ProductDetailBySku", "anonymous", lambda s: {"sku": "NO-SUCH-SKU"}, _data_at("product", equals=None)
    ),
    "category-nav": Case("CategoryNav", "anonymous", _none, _data_at("categories")),
    "category-page": Case(
        "CategoryPage",
        "anonymous",
        lambda s: {"slug": s.category["slug"], "first": 4},
        _data_at("category", "products"),
    ),
    "category-page-unknown": Case(
        "CategoryPage", "anonymous", lambda s: {"slug": "no-such-category"}, _data_at("category", equals=None)
    ),
    "me-anonymous": Case("Me", "anonymous", _none, _data_at("me", equals=None)),
    "me": Case("Me", "shopper", _none, _data_at("me", "email")),
    "account-page": Case("AccountPage", "shopper", _none, _data_at("me", "addresses")),
    "cart-page": Case("CartPage", "shopper", _none, _data_at("cart", "items")),
    "cart-page-empty": Case("CartPage", "stranger", _none, _data_at("cart", "items", equals=[])),
    "cart-page-anonymous": Case("CartPage", "anonymous", _none, _error("UNAUTHENTICATED", ["cart"])),
    "order-history": Case("OrderHistory", "shopper", _none, _data_at("me", "orders", "totalCount", equals=2)),
    "order-history-first-page": Case(
        "OrderHistory", "shopper", lambda s: {"first": 1}, _data_at("me", "orders", "pageInfo", "hasNextPage")
    ),
    # An order item's product is gone from the catalog: Product.name is non-null, so the null
    # travels up to the nearest nullable field (the item's product), with an error at its path.
    "order-history-missing-product": Case(
        "OrderHistory", "ghost", _none, lambda r: "errors" in r and r["data"]["me"]["orders"] is not None
    ),
    "storefront-home-missing-product": Case(
        "StorefrontHome", "ghost", _none, lambda r: "errors" in r and r["data"]["me"]["orders"] is not None
    ),
    "order-history-none": Case("OrderHistory", "stranger", _none, _data_at("me", "orders", "totalCount", equals=0)),
    "order-history-anonymous": Case("OrderHistory", "anonymous", _none, _data_at("me", equals=None)),
    "order-detail": Case(
        "OrderDetail", "shopper", lambda s: {"number": s.orders[0]["number"]}, _data_at("order", "items")
    ),
    "order-detail-unknown": Case(
        "OrderDetail", "shopper", lambda s: {"number": "SG-999999999"}, _data_at("order", equals=None)
    ),
    "order-detail-not-yours": Case(
        "OrderDetail", "stranger", lambda s: {"number": s.orders[1]["number"]}, _data_at("order", equals=None)
    ),
    "order-detail-anonymous": Case(
        "OrderDetail", "anonymous", lambda s: {"number": s.orders[1]["number"]}, lambda r: "errors" in r
    ),
    "storefront-home": Case("StorefrontHome", "shopper", _none, _data_at("me", "orders", "edges")),
    "storefront-home-empty": Case("StorefrontHome", "stranger", _none, _data_at("me", "cart")),
    "storefront-home-anonymous": Case("StorefrontHome", "anonymous", _none, _data_at("me", equals=None)),
    "admin-all-orders": Case(
        "AdminAllOrders", "admin", lambda s: {"first": 20, "status": "PENDING_PAYMENT"}, _data_at("allOrders", "edges")
    ),
    "admin-all-orders-paid": Case(
        "AdminAllOrders", "admin", lambda s: {"first": 5, "status": "PAID"}, _data_at("allOrders", "edges")
    ),
    # An order of a product gone from the catalog: OrderItem.product is nullable, so only that
    # product nulls (with an error at its path) and the rest of the list survives, on both.
    "admin-all-orders-missing-product": Case(
        "AdminAllOrders",
        "admin",
        lambda s: {"first": 20, "status": "DELIVERED"},
        lambda r: (
            r["data"]["allOrders"] is not None and all(e["path"][-2:] == ["product", "name"] for e in r["errors"])
        ),
    ),
    "admin-all-orders-forbidden": Case(
        "AdminAllOrders", "shopper", _none, _error("UNAUTHORIZED_FIELD_OR_TYPE", ["allOrders"]), refused=True
    ),
}


@pytest.mark.parametrize("case", READS.values(), ids=READS.keys())
async def test_reads_are_identical(case: Case, shop: Shop, ours: Storefront, theirs: Storefront) -> None:
    variables = case.variables(shop)
    mine, apollo = await _both(ours, theirs, shop, case.operation, variables, case.who)
    assert case.expect(mine), mine
    if case.refused:
        assert refused_alike(mine, apollo), (mine, apollo)
    else:
        assert comparable(mine) == comparable(apollo)


async def test_pagination_cursors_work_across_both(shop: Shop, ours: Storefront, theirs: Storefront) -> None:
    """A cursor from one gateway's page is the subgraph's, so it pages the same through the other."""
    variables: Json = {"search": shop.tag, "first": 2, "sortKey": "PRICE"}
    first, _ = await _both(ours, theirs, shop, "ProductList", variables, "anonymous")
    cursor = first["data"]["products"]["pageInfo"]["endCursor"]
    mine, apollo = await _both(ours, theirs, shop, "ProductList", {**variables, "after": cursor}, "anonymous")
    assert [e["node"]["name"] for e in mine["data"]["products"]["edges"]] == [f"{shop.tag} Chair"]
    assert comparable(mine) == comparable(apollo)


# --- mutations: one shopper per gateway, identical histories -------------------------------------


class Twin:
    """One side of a mutation run: a gateway, and the shopper and objects it made."""

    def __init__(self, gateway: Storefront, apollo: bool, secret: str) -> None:
        self.gateway = gateway
        self.apollo = apollo
        self.secret = secret
        self.user: Shopper | None = None
        self.replace: dict[str, str] = {}

    def token(self, user: Shopper | None) -> str | None:
        if user is None:
            return anonymous_internal_token(self.secret) if self.apollo else None
        return user.internal_token(self.secret) if self.apollo else user.access_token

    async def send(self, operation: str, variables: Json, user: Shopper | None) -> Json:
        return await self.gateway.send(operation, variables, self.token(user))


async def _step(
    ours: Twin,
    theirs: Twin,
    operation: str,
    variables: Callable[[Twin], Json],
    user: Callable[[Twin], Shopper | None],
    *,
    refused: bool = False,
) -> tuple[Json, Json]:
    """One operation through both, answering alike; ``refused``: an administrators' mutation sent
    by someone else, refused alike by both (refused_alike)."""
    mine = await ours.send(operation, variables(ours), user(ours))
    apollo = await theirs.send(operation, variables(theirs), user(theirs))
    if refused:
        assert refused_alike(mine, apollo), (operation, mine, apollo)
    else:
        assert comparable(normalise(mine, ours.replace)) == comparable(normalise(apollo, theirs.replace)), operation
    return mine, apollo


async def _refresh_token_of(twin: Twin, email: str) -> str:
    query = "mutation($input: LoginInput!) { login(input: $input) { refreshToken } }"
    token = twin.token(None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    variables = {"input": {"email": email, "password": PASSWORD}}
    r = await twin.gateway.client.post(twin.gateway.url, json={"query": query, "variables": variables}, headers=headers)
    refresh_token: str = r.json()["data"]["login"]["refreshToken"]
    return refresh_token


def _user_errors(result: Json, field: str) -> list[str]:
    return [e["code"] for e in result["data"][field]["userErrors"]]


async def test_storefront_mutations_are_identical(shop: Shop, ours: Storefront, theirs: Storefront) -> None:
    a, b = Twin(ours, False, shop.secret), Twin(theirs, True, shop.secret)
    p0, p1, p2 = (p["id"] for p in shop.products)
    admin: Callable[[Twin], Shopper | None] = lambda _: shop.admin  # noqa: E731
    me: Callable[[Twin], Shopper | None] = lambda t: t.user  # noqa: E731
    nobody: Callable[[Twin], Shopper | None] = lambda _: None  # noqa: E731

    # Sign-up, sign-in, silent refresh, sign-out: through each gateway itself.
    for twin in (a, b):
        email = f"twin-{secrets.token_hex(6)}@example.com"
        twin.replace[email] = "<email>"
        result = await twin.send("Register", {"input": {"email": email, "password": PASSWORD, "name": "Twin"}}, None)
        assert result["data"]["register"]["userErrors"] == [], result
    emails = {id(t): next(iter(t.replace)) for t in (a, b)}

    def creds(t: Twin, password: str = PASSWORD) -> Json:
        return {"input": {"email": emails[id(t)], "password": password}}

    def signed_in(mine: Json, apollo: Json) -> None:
        for twin, result in ((a, mine), (b, apollo)):
            payload = result["data"]["login"]
            twin.user = Shopper(payload["user"]["id"], emails[id(twin)], "CUSTOMER", payload["accessToken"])

    mine, apollo = await _step(a, b, "Login", creds, nobody)
    signed_in(mine, apollo)
    # The storefront's Login leaves the refresh token to the HttpOnly cookie (which only our router
    # relays): each side's token for the refresh steps comes from a sign-in that asks for it.
    refresh = {id(t): await _refresh_token_of(t, emails[id(t)]) for t in (a, b)}
    mine, apollo = await _step(a, b, "RefreshSession", lambda t: {"input": {"refreshToken": refresh[id(t)]}}, nobody)
    assert mine["data"]["refreshToken"]["accessToken"]
    # The old refresh token was rotated away: reusing it is refused the same way by both.
    mine, _ = await _step(a, b, "RefreshSession", lambda t: {"input": {"refreshToken": refresh[id(t)]}}, nobody)
    assert _user_errors(mine, "refreshToken"), mine
    mine, _ = await _step(a, b, "Login", lambda t: creds(t, "wrong-password-123"), nobody)
    assert _user_errors(mine, "login") == ["INVALID_CREDENTIALS"]
    mine, _ = await _step(a, b, "Register", lambda t: creds(t) | {"input": creds(t)["input"] | {"name": "X"}}, nobody)
    assert _user_errors(mine, "register") == ["EMAIL_TAKEN"]
    # The reuse also signed out every access token of the account issued until then (the thief's
    # included): ours refuses the first sign-in's token now; Apollo's side is sent internal tokens
    # minted per request, so it cannot tell. Both shoppers sign in again.
    stale = await a.send("AddToCart", {"input": {"productId": p0, "quantity": 1}}, a.user)
    assert [e["extensions"]["code"] for e in stale["errors"]][:1] == ["UNAUTHENTICATED"], stale
    signed_in(*await _step(a, b, "Login", creds, nobody))

    # The cart.
    def line(product: str, quantity: int) -> Callable[[Twin], Json]:
        return lambda _: {"input": {"productId": product, "quantity": quantity}}

    mine, _ = await _step(a, b, "AddToCart", line(p0, 2), me)
    assert mine["data"]["addToCart"]["cart"]["totalQuantity"] == 2
    await _step(a, b, "AddToCart", line(p1, 1), me)
    await _step(a, b, "AddToCart", line(p2, 1), me)
    await _step(a, b, "UpdateCartItem", line(p0, 5), me)
    mine, _ = await _step(a, b, "RemoveFromCart", lambda _: {"input": {"productId": p2}}, me)
    assert mine["data"]["removeFromCart"]["cart"]["totalQuantity"] == 6
    mine, _ = await _step(a, b, "AddToCart", line(str(uuid.uuid4()), 1), me)
    assert _user_errors(mine, "addToCart") == ["PRODUCT_NOT_FOUND"]
    mine, _ = await _step(a, b, "UpdateCartItem", line(p0, 0), me)
    assert _user_errors(mine, "updateCartItem"), mine
    mine, _ = await _step(a, b, "AddToCart", line(p0, 1), nobody)
    assert mine["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # The account, then checkout: idempotent per key, refused on an empty cart.
    await _step(a, b, "AddAddress", lambda _: {"input": ADDRESS}, me)
    keys = {id(a): secrets.token_hex(8), id(b): secrets.token_hex(8)}
    checkout: Callable[[Twin], Json] = lambda t: {"input": {"idempotencyKey": keys[id(t)], "shippingAddress": ADDRESS}}  # noqa: E731
    mine, apollo = await _step(a, b, "Checkout", checkout, me)
    order = {id(a): mine["data"]["checkout"]["order"], id(b): apollo["data"]["checkout"]["order"]}
    assert order[id(a)]["total"]["amount"] == "66.49"
    again, _ = await _step(a, b, "Checkout", checkout, me)
    assert again["data"]["checkout"]["order"]["id"] == order[id(a)]["id"]
    mine, _ = await _step(
        a, b, "Checkout", lambda _: {"input": {"idempotencyKey": secrets.token_hex(8), "shippingAddress": ADDRESS}}, me
    )
    assert _user_errors(mine, "checkout") == ["CART_EMPTY"]
    mine, _ = await _step(a, b, "Checkout", lambda t: {"input": {"idempotencyKey": "", "shippingAddress": ADDRESS}}, me)
    assert _user_errors(mine, "checkout"), mine

    # After the order: history and the home page agree too (masked: both shoppers' own orders).
    for operation in ("OrderHistory", "StorefrontHome", "CartPage", "AccountPage"):
        await _step(a, b, operation, lambda _: {}, me)
    await _step(a, b, "OrderDetail", lambda t: {"number": order[id(t)]["number"]}, me)

    # Cancelling: once, then refused; an admin cannot move a cancelled order on.
    order_id: Callable[[Twin], Json] = lambda t: {"input": {"orderId": order[id(t)]["id"]}}  # noqa: E731
    mine, _ = await _step(a, b, "CancelOrder", order_id, me)
    assert mine["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"
    mine, _ = await _step(a, b, "CancelOrder", order_id, me)
    assert _user_errors(mine, "cancelOrder") == ["INVALID_STATUS_TRANSITION"]
    paid: Callable[[Twin], Json] = lambda t: {"input": order_id(t)["input"] | {"status": "PAID"}}  # noqa: E731
    mine, _ = await _step(a, b, "AdminUpdateOrderStatus", paid, admin)
    assert _user_errors(mine, "updateOrderStatus") == ["INVALID_STATUS_TRANSITION"]
    mine, _ = await _step(a, b, "AdminUpdateOrderStatus", paid, me, refused=True)
    assert mine["errors"][0]["extensions"]["code"] == "UNAUTHORIZED_FIELD_OR_TYPE"

    # Sign out revokes the (rotated) refresh token family.
    mine, _ = await _step(a, b, "Logout", lambda t: {"input": {"refreshToken": refresh[id(t)]}}, me)
    assert "ok" in mine["data"]["logout"]


async def test_admin_mutations_are_identical(shop: Shop, ours: Storefront, theirs: Storefront) -> None:
    a, b = Twin(ours, False, shop.secret), Twin(theirs, True, shop.secret)
    admin: Callable[[Twin], Shopper | None] = lambda _: shop.admin  # noqa: E731
    customer: Callable[[Twin], Shopper | None] = lambda _: shop.stranger  # noqa: E731
    for twin in (a, b):
        twin.replace[f"ADM-{secrets.token_hex(4).upper()}"] = "<sku>"
    sku = {id(t): next(iter(t.replace)) for t in (a, b)}

    def product(t: Twin, **extra: Any) -> Json:
        return {
            "input": {
                "sku": sku[id(t)],
                "name": "Admin Kettle",
                "price": "24.00",
                "stock": 3,
                "categoryId": shop.category["id"],
            }
            | extra
        }

    mine, apollo = await _step(a, b, "AdminCreateProduct", product, admin)
    created = {id(a): mine["data"]["createProduct"]["product"], id(b): apollo["data"]["createProduct"]["product"]}
    assert created[id(a)]["category"]["id"] == shop.category["id"]
    mine, _ = await _step(a, b, "AdminCreateProduct", product, admin)
    assert _user_errors(mine, "createProduct") == ["SKU_TAKEN"]
    mine, _ = await _step(a, b, "AdminCreateProduct", lambda t: product(t, sku=sku[id(t)] + "-2", price="-1"), admin)
    assert _user_errors(mine, "createProduct") == ["INVALID_PRICE"]
    mine, _ = await _step(
        a, b, "AdminCreateProduct", lambda t: product(t, sku=sku[id(t)] + "-3"), customer, refused=True
    )
    assert mine["errors"][0]["extensions"]["code"] == "UNAUTHORIZED_FIELD_OR_TYPE"

    def adjust(delta: int) -> Callable[[Twin], Json]:
        return lambda t: {"input": {"productId": created[id(t)]["id"], "delta": delta}}

    mine, _ = await _step(a, b, "AdminAdjustStock", adjust(7), admin)
    assert mine["data"]["adjustStock"]["product"]["stock"] == 10
    mine, _ = await _step(a, b, "AdminAdjustStock", adjust(-11), admin)
    assert _user_errors(mine, "adjustStock") == ["STOCK_BELOW_ZERO"]
    mine, _ = await _step(a, b, "AdminAdjustStock", adjust(-10), admin)
    assert mine["data"]["adjustStock"]["product"]["inStock"] is False
    unknown = str(uuid.uuid4())
    mine, _ = await _step(a, b, "AdminAdjustStock", lambda _: {"input": {"productId": unknown, "delta": 1}}, admin)
    assert _user_errors(mine, "adjustStock") == ["PRODUCT_NOT_FOUND"]

    deliver = {"input": {"orderId": shop.orders[1]["id"], "status": "DELIVERED"}}
    mine, _ = await _step(a, b, "AdminUpdateOrderStatus", lambda _: deliver, admin)
    assert _user_errors(mine, "updateOrderStatus") == ["INVALID_STATUS_TRANSITION"]
