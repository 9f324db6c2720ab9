"""The cart subgraph's graph surface: the signed-in shopper's cart, and User.cart."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import strawberry
from sqlalchemy import Row
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.types import Info

from subgraphs.kit.context import RequestContext
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.errors import UserError, bad_input
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money
from subgraphs.kit.mutations import internal, mutate, signed_in
from subgraphs.kit.schema import federated_schema

from .loaders import Loaders
from .service import Carts


@dataclass
class CartContext(RequestContext):
    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime.db, self.runtime.client("catalog"))

    @cached_property
    def carts(self) -> Carts:
        # Through ``self.loaders`` at call time: reset_loaders() after a change must reach it.
        return Carts(self.runtime.db, lambda product_id: self.loaders.product.load(product_id))

    @property
    def currency(self) -> str:
        return self.runtime.settings.currency


CartInfo = Info[CartContext, None]


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)])
class Product:
    id: strawberry.ID


@strawberry.type(description="One product in a cart, priced at the catalog's current price.")
class CartItem:
    id: strawberry.ID
    quantity: int
    product_id: strawberry.Private[uuid.UUID]

    # Nullable on purpose: a product the catalog cannot resolve (or a catalog
    # outage) nulls this field only, not the whole order history / cart.
    @strawberry.field(description="Null only if the catalog cannot resolve it, so one bad line never hides the cart.")
    def product(self) -> Product | None:
        return Product(id=strawberry.ID(str(self.product_id)))

    @strawberry.field(description="The catalog's current price; null if the catalog cannot price the product now.")
    async def unit_price(self, info: CartInfo) -> Money | None:
        price = await _unit_price(info, self.product_id)
        return None if price is None else Money.of(price, info.context.currency)

    @strawberry.field
    async def line_total(self, info: CartInfo) -> Money | None:
        price = await _unit_price(info, self.product_id)
        return None if price is None else Money.of(price * self.quantity, info.context.currency)

    @strawberry.field(description="False when the product was archived or has less stock than this quantity.")
    async def available(self, info: CartInfo) -> bool:
        product = await info.context.loaders.product.load(self.product_id)
        return product is not None and product.active and product.stock >= self.quantity

    @classmethod
    def from_row(cls, row: Row[Any]) -> CartItem:
        return cls(id=strawberry.ID(str(row.id)), quantity=row.quantity, product_id=row.product_id)


async def _unit_price(info: CartInfo, product_id: uuid.UUID) -> int | None:
    """The catalog's current price; None (never an invented 0) if the catalog does not know it."""
    product = await info.context.loaders.product.load(product_id)
    return product.price_minor if product else None


@strawberry.federation.type(keys=["id"], description="A shopper's cart; one per signed-in user.")
class Cart:
    id: strawberry.ID
    updated_at: datetime
    pk: strawberry.Private[uuid.UUID]
    owner_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def items(self, info: CartInfo) -> list[CartItem]:
        return [CartItem.from_row(r) for r in await info.context.loaders.items.load(self.pk)]

    @strawberry.field
    async def total_quantity(self, info: CartInfo) -> int:
        return sum(r.quantity for r in await info.context.loaders.items.load(self.pk))

    @strawberry.field(description="Sum of the priced lines at current catalog prices, before shipping.")
    async def subtotal(self, info: CartInfo) -> Money:
        rows = await info.context.loaders.items.load(self.pk)
        products = await info.context.loaders.product.load_many([r.product_id for r in rows])
        total = sum(p.price_minor * r.quantity for r, p in zip(rows, products, strict=True) if p is not None)
        return Money.of(total, info.context.currency)

    @classmethod
    def from_row(cls, row: Row[Any]) -> Cart:
        return cls(id=strawberry.ID(str(row.id)), updated_at=row.updated_at, pk=row.id, owner_id=row.user_id)

    @classmethod
    async def resolve_reference(cls, info: CartInfo, id: strawberry.ID) -> Cart | None:
        key = parse_uuid(id)
        row = await info.context.loaders.cart.load(key) if key else None
        if row is None or not info.context.identity.can_see_user(row.user_id):
            return None
        return cls.from_row(row)


async def cart_of(info: CartInfo, user_id: uuid.UUID) -> Cart:
    return Cart.from_row(await info.context.loaders.cart_of_user.load(user_id))


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID

    @strawberry.field(description="The user's cart; null unless you are this user or an administrator.")
    async def cart(self, info: CartInfo) -> Cart | None:
        user_id = parse_uuid(self.id)
        if user_id is None or not info.context.identity.can_see_user(user_id):
            return None
        return await cart_of(info, user_id)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        return cls(id=id)


@strawberry.type
class CartPayload:
    cart: Cart | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AddToCartInput:
    product_id: strawberry.ID
    quantity: int = 1


@strawberry.input
class UpdateCartItemInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input
class RemoveFromCartInput:
    product_id: strawberry.ID


@strawberry.federation.input(inaccessible=True)
class CheckoutLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.federation.input(inaccessible=True)
class CompleteCheckoutInput:
    user_id: strawberry.ID
    checkout_id: strawberry.ID
    lines: list[CheckoutLineInput]


@strawberry.federation.type(inaccessible=True)
class CompleteCheckoutPayload:
    removed: bool


@strawberry.federation.input(inaccessible=True)
class CartCheckoutInput:
    user_id: strawberry.ID
    checkout_id: strawberry.ID


@strawberry.federation.type(inaccessible=True)
class CheckoutLine:
    product_id: strawberry.ID
    quantity: int


@strawberry.federation.type(inaccessible=True)
class BeginCheckoutPayload:
    lines: list[CheckoutLine] | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.federation.type(inaccessible=True)
class ReleaseCheckoutPayload:
    released: bool = False


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in shopper's cart.")
    async def cart(self, info: CartInfo) -> Cart:
        return await cart_of(info, info.context.identity.require_user())


async def _change(info: CartInfo, change: Callable[[uuid.UUID], Awaitable[None]]) -> CartPayload:
    """Run a cart change for the signed-in user and return the updated cart."""

    async def perform(user_id: uuid.UUID) -> CartPayload:
        await change(user_id)
        info.context.reset_loaders()
        return CartPayload(cart=await cart_of(info, user_id))

    return await mutate(info, CartPayload, perform, allow=signed_in)


def _product_id(value: strawberry.ID) -> uuid.UUID:
    product_id = parse_uuid(value)
    if product_id is None:
        raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
    return product_id


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Add a product (or more of it) to the cart.")
    async def add_to_cart(self, info: CartInfo, input: AddToCartInput) -> CartPayload:
        carts = info.context.carts
        return await _change(
            info, lambda user: carts.set_quantity(user, _product_id(input.product_id), input.quantity, add=True)
        )

    @strawberry.mutation(description="Set the quantity of a product already in the cart (1..99).")
    async def update_cart_item(self, info: CartInfo, input: UpdateCartItemInput) -> CartPayload:
        carts = info.context.carts
        return await _change(
            info, lambda user: carts.set_quantity(user, _product_id(input.product_id), input.quantity, add=False)
        )

    @strawberry.mutation
    async def remove_from_cart(self, info: CartInfo, input: RemoveFromCartInput) -> CartPayload:
        carts = info.context.carts
        return await _change(info, lambda user: carts.remove(user, _product_id(input.product_id)))

    @strawberry.mutation
    async def clear_cart(self, info: CartInfo) -> CartPayload:
        return await _change(info, info.context.carts.clear)

    @strawberry.federation.mutation(
        inaccessible=True, description="Internal (orders only): claim the cart for one checkout and read its lines."
    )
    async def begin_checkout(self, info: CartInfo, input: CartCheckoutInput) -> BeginCheckoutPayload:
        async def perform(_: str) -> BeginCheckoutPayload:
            user_id, checkout_id = _checkout_ids(input.user_id, input.checkout_id)
            lines = await info.context.carts.begin_checkout(user_id, checkout_id)
            return BeginCheckoutPayload(
                lines=[CheckoutLine(product_id=strawberry.ID(str(p)), quantity=q) for p, q in lines]
            )

        return await mutate(info, BeginCheckoutPayload, perform, allow=internal("orders"))

    @strawberry.federation.mutation(
        inaccessible=True, description="Internal (orders only): a failed checkout gives the cart back."
    )
    async def release_checkout(self, info: CartInfo, input: CartCheckoutInput) -> ReleaseCheckoutPayload:
        async def perform(_: str) -> ReleaseCheckoutPayload:
            user_id, checkout_id = _checkout_ids(input.user_id, input.checkout_id)
            return ReleaseCheckoutPayload(released=await info.context.carts.release_checkout(user_id, checkout_id))

        return await mutate(info, ReleaseCheckoutPayload, perform, allow=internal("orders"))

    @strawberry.federation.mutation(
        inaccessible=True, description="Internal (orders only): take what an order bought out of the cart."
    )
    async def complete_checkout(self, info: CartInfo, input: CompleteCheckoutInput) -> CompleteCheckoutPayload:
        async def perform(_: str) -> CompleteCheckoutPayload:
            user_id, checkout_id = _checkout_ids(input.user_id, input.checkout_id)
            lines = [(parse_uuid(line.product_id), line.quantity) for line in input.lines]
            if any(pid is None for pid, _ in lines):
                raise bad_input("productId must be a UUID.")
            removed = await info.context.carts.complete_checkout(
                user_id, checkout_id, [(pid, qty) for pid, qty in lines if pid is not None]
            )
            return CompleteCheckoutPayload(removed=removed)

        return await mutate(info, CompleteCheckoutPayload, perform, allow=internal("orders"))


def _checkout_ids(user: strawberry.ID, checkout: strawberry.ID) -> tuple[uuid.UUID, uuid.UUID]:
    user_id, checkout_id = parse_uuid(user), parse_uuid(checkout)
    if user_id is None or checkout_id is None:
        raise bad_input("userId and checkoutId must be UUIDs.")
    return user_id, checkout_id


schema = federated_schema(
    query=Query,
    mutation=Mutation,
    types=[Cart, User, Product],
)
