"""The cart subgraph's graph surface: the signed-in shopper's cart (or a guest's, by its token), User.cart,
and the cart's prices (shipping, tax, discounts: pricing/)."""

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

from subgraphs.kit.auth import Identity
from subgraphs.kit.breakdown import PriceBreakdown
from subgraphs.kit.context import RequestContext
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.errors import UserError, bad_input
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money
from subgraphs.kit.mutations import anyone, internal, mutate, signed_in
from subgraphs.kit.schema import federated_schema

from . import guest as guest_tokens
from .guest import Guest
from .loaders import Loaders, QuoteKey
from .pricing import metrics as pricing_metrics
from .pricing.admin import clean_code, clean_country
from .pricing.graph import CartDestination, CartDiscountCode, PricingMutation, ShippingOption
from .pricing.quote import CartState, Quote
from .pricing.store import Destination
from .service import Carts, Notice, Owner


@dataclass
class CartContext(RequestContext):
    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime.db, self.runtime.client("catalog"), self.currency)

    @cached_property
    def carts(self) -> Carts:
        # Through ``self.loaders`` at call time: reset_loaders() after a change must reach it.
        return Carts(
            self.runtime.db,
            lambda variant_id: self.loaders.product.load(variant_id),
            lambda product_id: self.loaders.default_variant.load(product_id),
        )

    @property
    def currency(self) -> str:
        return self.runtime.settings.currency

    def guest(self, token: str) -> Guest:
        return guest_tokens.verify(self.runtime.settings.service_secret, token)


CartInfo = Info[CartContext, None]


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)])
class Product:
    id: strawberry.ID


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)])
class ProductVariant:
    id: strawberry.ID


@strawberry.type(description="One variant of a product in a cart, priced at the catalog's current price.")
class CartItem:
    id: strawberry.ID
    quantity: int
    product_id: strawberry.Private[uuid.UUID]
    variant_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The variant this line sells.")
    def variant(self) -> ProductVariant:
        return ProductVariant(id=strawberry.ID(str(self.variant_id)))

    quote_key: strawberry.Private[QuoteKey | None] = None

    # Nullable on purpose: a product the catalog cannot resolve (or a catalog
    # outage) nulls this field only, not the whole order history / cart.
    @strawberry.field(description="Null only if the catalog cannot resolve it, so one bad line never hides the cart.")
    def product(self) -> Product | None:
        return Product(id=strawberry.ID(str(self.product_id)))

    @strawberry.field(description="The catalog's current price; null if the catalog cannot price the product now.")
    async def unit_price(self, info: CartInfo) -> Money | None:
        price = await _unit_price(info, self.variant_id)
        return None if price is None else Money.of(price, info.context.currency)

    @strawberry.field
    async def line_total(self, info: CartInfo) -> Money | None:
        price = await _unit_price(info, self.variant_id)
        return None if price is None else Money.of(price * self.quantity, info.context.currency)

    @strawberry.field(description="False when the product was archived or has less stock than this quantity.")
    async def available(self, info: CartInfo) -> bool:
        product = await info.context.loaders.product.load(self.variant_id)
        return product is not None and product.active and product.stock >= self.quantity

    @strawberry.field(description="Tax on this line after its share of the discounts; null if it cannot be priced.")
    async def tax(self, info: CartInfo) -> Money | None:
        return await self._priced(info, "tax")

    @strawberry.field(description="This line's share of the cart's discounts; null if it cannot be priced.")
    async def discount(self, info: CartInfo) -> Money | None:
        return await self._priced(info, "discount")

    async def _priced(self, info: CartInfo, what: str) -> Money | None:
        if self.quote_key is None:
            return None
        breakdown = (await info.context.loaders.quote.load(self.quote_key)).breakdown
        amounts = breakdown.line_tax if what == "tax" else breakdown.line_discount
        amount = amounts.get(self.variant_id)
        return None if amount is None else Money.of(amount, breakdown.currency)

    @classmethod
    def from_row(cls, row: Row[Any], quote_key: QuoteKey | None = None) -> CartItem:
        return cls(
            id=strawberry.ID(str(row.id)),
            quantity=row.quantity,
            product_id=row.product_id,
            variant_id=row.variant_id,
            quote_key=quote_key,
        )


async def _unit_price(info: CartInfo, variant_id: uuid.UUID) -> int | None:
    """The catalog's current price; None (never an invented 0) if the catalog does not know it."""
    product = await info.context.loaders.product.load(variant_id)
    return product.price_minor if product else None


@strawberry.federation.type(keys=["id"], description="A shopper's cart; one per signed-in user, or a guest's.")
class Cart:
    id: strawberry.ID
    updated_at: datetime
    pk: strawberry.Private[uuid.UUID]
    owner_id: strawberry.Private[uuid.UUID | None]
    state: strawberry.Private[CartState]

    @strawberry.field
    async def items(self, info: CartInfo) -> list[CartItem]:
        key = (self.pk, self.state)
        return [CartItem.from_row(r, key) for r in await info.context.loaders.items.load(self.pk)]

    @strawberry.field(description="True for a signed-out shopper's cart (reached with its cart token).")
    def guest(self) -> bool:
        return self.owner_id is None

    @strawberry.field(description="Where the cart is to be shipped, for shipping options and tax; null until set.")
    def destination(self) -> CartDestination | None:
        where = self.state.destination
        return CartDestination(country=where.country, region=where.region) if where else None

    async def _quote(self, info: CartInfo) -> Quote:
        return await info.context.loaders.quote.load((self.pk, self.state))

    @strawberry.field(description="The priced breakdown at current catalog prices, for the cart's destination.")
    async def cost(self, info: CartInfo) -> PriceBreakdown:
        b = (await self._quote(info)).breakdown
        return PriceBreakdown.of(
            b.currency,
            subtotal=b.subtotal,
            discounts=b.discounts,
            shipping=b.shipping,
            tax=b.tax,
            total=b.total,
            tax_included=b.prices_include_tax,
        )

    @strawberry.field(description="The shipping methods that deliver to the destination, at their price for this cart.")
    async def shipping_options(self, info: CartInfo) -> list[ShippingOption]:
        q = await self._quote(info)
        chosen = q.breakdown.shipping_method
        return [ShippingOption.of(o, chosen, q.breakdown.currency) for o in q.options]

    @strawberry.field(description="The method the cart ships with: the chosen one, else the cheapest that delivers.")
    async def shipping_method(self, info: CartInfo) -> ShippingOption | None:
        q = await self._quote(info)
        chosen = q.breakdown.shipping_method
        option = next((o for o in q.options if chosen is not None and o.method.id == chosen.id), None)
        return ShippingOption.of(option, chosen, q.breakdown.currency) if option else None

    @strawberry.field(
        description="Automatic promotions and the entered code: what each takes off, or why it does not apply."
    )
    async def discount_codes(self, info: CartInfo) -> list[CartDiscountCode]:
        b = (await self._quote(info)).breakdown
        return [CartDiscountCode.of(u, b.currency) for u in b.uses]

    @strawberry.field
    async def total_quantity(self, info: CartInfo) -> int:
        return sum(r.quantity for r in await info.context.loaders.items.load(self.pk))

    @strawberry.field(description="Sum of the priced lines at current catalog prices, before shipping.")
    async def subtotal(self, info: CartInfo) -> Money:
        rows = await info.context.loaders.items.load(self.pk)
        products = await info.context.loaders.product.load_many([r.variant_id for r in rows])
        total = sum(p.price_minor * r.quantity for r, p in zip(rows, products, strict=True) if p is not None)
        return Money.of(total, info.context.currency)

    @classmethod
    def from_row(cls, row: Row[Any]) -> Cart:
        return cls(
            id=strawberry.ID(str(row.id)),
            updated_at=row.updated_at,
            pk=row.id,
            owner_id=row.user_id,
            state=CartState.of(row),
        )

    @classmethod
    async def resolve_reference(cls, info: CartInfo, id: strawberry.ID) -> Cart | None:
        key = parse_uuid(id)
        row = await info.context.loaders.cart.load(key) if key else None
        if row is None:
            return None
        # A guest cart is its token's holder's only: by id, only to another subgraph.
        if row.user_id is None and not info.context.identity.is_subgraph:
            return None
        if row.user_id is not None and not info.context.identity.can_see_user(row.user_id):
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


@strawberry.input(description="Give variantId, or productId alone for the product's default variant.")
class AddToCartInput:
    product_id: strawberry.ID | None = None
    variant_id: strawberry.ID | None = None
    quantity: int = 1
    cart_token: str | None = strawberry.field(default=None, description="A guest cart's token; omit for your own cart.")


@strawberry.input(description="Give variantId, or productId alone for the product's one line in the cart.")
class UpdateCartItemInput:
    product_id: strawberry.ID | None = None
    variant_id: strawberry.ID | None = None
    quantity: int
    cart_token: str | None = strawberry.field(default=None, description="A guest cart's token; omit for your own cart.")


@strawberry.input(description="Give variantId, or productId alone to remove every line of the product.")
class RemoveFromCartInput:
    product_id: strawberry.ID | None = None
    variant_id: strawberry.ID | None = None
    cart_token: str | None = strawberry.field(default=None, description="A guest cart's token; omit for your own cart.")


@strawberry.input
class ClearCartInput:
    cart_token: str | None = strawberry.field(default=None, description="A guest cart's token; omit for your own cart.")


@strawberry.input
class SetCartDestinationInput:
    country: str = strawberry.field(description="Two-letter ISO code.")
    region: str | None = None
    cart_token: str | None = strawberry.field(default=None, description="A guest cart's token; omit for your own cart.")


@strawberry.input
class SetCartShippingMethodInput:
    shipping_method_id: strawberry.ID = strawberry.field(description="One of the cart's shippingOptions.")
    cart_token: str | None = strawberry.field(default=None, description="A guest cart's token; omit for your own cart.")


@strawberry.input
class ApplyDiscountCodeInput:
    code: str
    cart_token: str | None = strawberry.field(default=None, description="A guest cart's token; omit for your own cart.")


@strawberry.input
class RemoveDiscountCodeInput:
    cart_token: str | None = strawberry.field(default=None, description="A guest cart's token; omit for your own cart.")


@strawberry.type
class GuestCartPayload:
    cart: Cart | None = None
    cart_token: str | None = strawberry.field(
        default=None, description="Keep it: it opens this cart until it is merged."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class MergeGuestCartInput:
    cart_token: str


@strawberry.type(description="Something a merge could not do as asked; the rest was done.")
class CartNotice:
    code: str = strawberry.field(description="QUANTITY_CAPPED, PRODUCT_UNAVAILABLE, CART_FULL or ALREADY_MERGED.")
    product_id: strawberry.ID | None
    message: str
    requested: int
    kept: int

    @classmethod
    def of(cls, notice: Notice) -> CartNotice:
        product = strawberry.ID(str(notice.product_id)) if notice.product_id else None
        return cls(
            code=notice.code, product_id=product, message=notice.message, requested=notice.requested, kept=notice.kept
        )


@strawberry.type
class MergeGuestCartPayload:
    cart: Cart | None = None
    notices: list[CartNotice] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.federation.input(inaccessible=True)
class CheckoutLineInput:
    product_id: strawberry.ID | None = None
    variant_id: strawberry.ID | None = strawberry.field(default=None, description="Wins over productId.")
    quantity: int


@strawberry.federation.input(inaccessible=True)
class CompleteCheckoutInput:
    user_id: strawberry.ID
    checkout_id: strawberry.ID
    lines: list[CheckoutLineInput]
    cart_token: str | None = strawberry.field(
        default=None, description="A guest's checkout: the guest cart's token (userId is then the guest's customer id)."
    )


@strawberry.federation.type(inaccessible=True)
class CompleteCheckoutPayload:
    removed: bool


@strawberry.federation.input(inaccessible=True)
class CartCheckoutInput:
    user_id: strawberry.ID
    checkout_id: strawberry.ID
    cart_token: str | None = strawberry.field(
        default=None, description="A guest's checkout: the guest cart's token (userId is then the guest's customer id)."
    )


@strawberry.federation.type(inaccessible=True)
class CheckoutLine:
    product_id: strawberry.ID
    variant_id: strawberry.ID
    quantity: int


@strawberry.federation.type(inaccessible=True)
class ReleaseCheckoutPayload:
    released: bool = False


@strawberry.federation.input(inaccessible=True)
class BeginPricedCheckoutInput:
    user_id: strawberry.ID
    checkout_id: strawberry.ID
    country: str = strawberry.field(description="Where the order ships: its shipping options and tax follow.")
    region: str | None = None
    cart_token: str | None = strawberry.field(
        default=None, description="A guest's checkout: the guest cart's token (userId is then the guest's customer id)."
    )


@strawberry.federation.type(inaccessible=True)
class PricedCheckoutLine:
    variant_id: strawberry.ID
    quantity: int
    unit_price: Money
    tax: Money
    discount: Money


@strawberry.federation.type(inaccessible=True)
class PricedCheckout:
    cost: PriceBreakdown
    lines: list[PricedCheckoutLine]
    shipping_method: str | None
    discount_codes: list[str]


@strawberry.federation.type(inaccessible=True)
class BeginPricedCheckoutPayload:
    lines: list[CheckoutLine] | None = None
    priced: PricedCheckout | None = strawberry.field(
        default=None, description="Null when no rule applies: the order costs its lines at the reserved prices."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def priced_checkout(quote: Quote) -> PricedCheckout:
    b = quote.breakdown
    cost = PriceBreakdown.of(
        b.currency,
        subtotal=b.subtotal,
        discounts=b.discounts,
        shipping=b.shipping,
        tax=b.tax,
        total=b.total,
        tax_included=b.prices_include_tax,
    )
    lines = [
        PricedCheckoutLine(
            variant_id=strawberry.ID(str(line.key)),
            quantity=line.quantity,
            unit_price=Money.of(line.unit_price_minor, b.currency),
            tax=Money.of(b.line_tax[line.key], b.currency),
            discount=Money.of(b.line_discount[line.key], b.currency),
        )
        for line in quote.lines
    ]
    method = b.shipping_method
    return PricedCheckout(
        cost=cost,
        lines=lines,
        shipping_method=f"{method.name} ({method.min_days}-{method.max_days} days)" if method else None,
        discount_codes=[d.code or d.title for d in b.applied],
    )


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in shopper's cart.")
    async def cart(self, info: CartInfo) -> Cart:
        return await cart_of(info, info.context.identity.require_user())

    @strawberry.field(description="A guest cart by its token; null if the token is forged, expired or merged.")
    async def guest_cart(self, info: CartInfo, token: str) -> Cart | None:
        try:
            guest = info.context.guest(token)
        except DomainError:
            return None
        row = await info.context.loaders.cart.load(guest.cart_id)
        if row is None or row.user_id is not None or row.merged_at is not None:
            return None
        return Cart.from_row(row)


async def _change(info: CartInfo, change: Callable[[Owner], Awaitable[None]], token: str | None = None) -> CartPayload:
    """Run a cart change for the signed-in user (or, given a cart token, on that guest cart) and return the cart."""
    if token is None:

        async def perform(user_id: uuid.UUID) -> CartPayload:
            await change(user_id)
            info.context.reset_loaders()
            return CartPayload(cart=await cart_of(info, user_id))

        return await mutate(info, CartPayload, perform, allow=signed_in)

    async def perform_guest(_: Identity) -> CartPayload:
        guest = info.context.guest(token)
        await change(guest)
        info.context.reset_loaders()
        row = await info.context.loaders.cart.load(guest.cart_id)
        return CartPayload(cart=Cart.from_row(row) if row else None)

    return await mutate(info, CartPayload, perform_guest, allow=anyone)


def _line_ids(
    product: strawberry.ID | None, variant: strawberry.ID | None
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(product id, variant id) of a line input: at least one, each a UUID (else not found)."""
    product_id = parse_uuid(product) if product is not None else None
    variant_id = parse_uuid(variant) if variant is not None else None
    if (product is not None and product_id is None) or (product_id is None and variant_id is None):
        raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
    if variant is not None and variant_id is None:
        raise DomainError(Code.PRODUCT_NOT_FOUND, "No such variant.", ["input", "variantId"])
    return product_id, variant_id


@strawberry.type
class Mutation(PricingMutation):
    @strawberry.mutation(description="Add a product (or more of it) to the cart.")
    async def add_to_cart(self, info: CartInfo, input: AddToCartInput) -> CartPayload:
        carts = info.context.carts

        async def change(user: Owner) -> None:
            product_id, variant_id = _line_ids(input.product_id, input.variant_id)
            await carts.set_quantity(user, product_id, input.quantity, add=True, variant_id=variant_id)

        return await _change(info, change, input.cart_token)

    @strawberry.mutation(description="Set the quantity of a product already in the cart (1..99).")
    async def update_cart_item(self, info: CartInfo, input: UpdateCartItemInput) -> CartPayload:
        carts = info.context.carts

        async def change(user: Owner) -> None:
            product_id, variant_id = _line_ids(input.product_id, input.variant_id)
            await carts.set_quantity(user, product_id, input.quantity, add=False, variant_id=variant_id)

        return await _change(info, change, input.cart_token)

    @strawberry.mutation
    async def remove_from_cart(self, info: CartInfo, input: RemoveFromCartInput) -> CartPayload:
        carts = info.context.carts
        return await _change(
            info, lambda user: carts.remove(user, *_line_ids(input.product_id, input.variant_id)), input.cart_token
        )

    @strawberry.mutation
    async def clear_cart(self, info: CartInfo, input: ClearCartInput | None = None) -> CartPayload:
        return await _change(info, info.context.carts.clear, input.cart_token if input else None)

    @strawberry.mutation(description="A cart for a signed-out shopper: keep the token, send it with each cart change.")
    async def create_guest_cart(self, info: CartInfo) -> GuestCartPayload:
        async def perform(_: Identity) -> GuestCartPayload:
            row = await info.context.carts.create_guest()
            token = guest_tokens.issue(info.context.runtime.settings.service_secret, row.id)
            return GuestCartPayload(cart=Cart.from_row(row), cart_token=token)

        return await mutate(info, GuestCartPayload, perform, allow=anyone)

    @strawberry.mutation(
        description="After sign-in: move a guest cart into yours (quantities capped by stock); its token is dead after."
    )
    async def merge_guest_cart(self, info: CartInfo, input: MergeGuestCartInput) -> MergeGuestCartPayload:
        async def perform(user_id: uuid.UUID) -> MergeGuestCartPayload:
            notices = await info.context.carts.merge_guest(user_id, info.context.guest(input.cart_token))
            info.context.reset_loaders()
            return MergeGuestCartPayload(cart=await cart_of(info, user_id), notices=[CartNotice.of(n) for n in notices])

        return await mutate(info, MergeGuestCartPayload, perform, allow=signed_in)

    @strawberry.mutation(description="Where the cart goes: its shipping options and tax follow from it.")
    async def set_cart_destination(self, info: CartInfo, input: SetCartDestinationInput) -> CartPayload:
        country = input.country
        region = (input.region or "").strip() or None

        async def change(owner: Owner) -> None:
            cleaned = clean_country(country, ["input", "country"])
            if cleaned == "*" or (region is not None and len(region) > 60):
                raise DomainError(Code.INVALID, "Use a two-letter ISO country code and a short region.", ["input"])
            await info.context.carts.set_destination(owner, cleaned, region)

        return await _change(info, change, input.cart_token)

    @strawberry.mutation(description="Choose one of the cart's shippingOptions.")
    async def set_cart_shipping_method(self, info: CartInfo, input: SetCartShippingMethodInput) -> CartPayload:
        method_id = parse_uuid(input.shipping_method_id)

        async def change(owner: Owner) -> None:
            quote = await _quote_of(info, owner)
            if method_id is None or all(o.method.id != method_id for o in quote.options):
                raise DomainError(
                    Code.SHIPPING_UNAVAILABLE,
                    "This shipping method does not deliver this cart to its destination.",
                    ["input", "shippingMethodId"],
                )
            await info.context.carts.set_choice(owner, shipping_method_id=method_id)

        return await _change(info, change, input.cart_token)

    @strawberry.mutation(
        description="Enter a discount code (replaces the one entered before); the cart shows what it does or why not."
    )
    async def apply_discount_code(self, info: CartInfo, input: ApplyDiscountCodeInput) -> CartPayload:
        async def change(owner: Owner) -> None:
            code = clean_code(input.code)
            quote = await _quote_of(info, owner, code=code)
            use = quote.breakdown.uses[-1]  # the entered code comes after the promotions
            if use.discount is None:
                pricing_metrics.DISCOUNT_REFUSALS.labels(reason="NOT_FOUND", at="apply").inc()
                raise DomainError(Code.DISCOUNT_NOT_APPLICABLE, "There is no such code.", ["input", "code"])
            if use.reason is not None:
                pricing_metrics.DISCOUNT_REFUSALS.labels(reason=use.reason.value, at="apply").inc()
            await info.context.carts.set_choice(owner, discount_code=code)

        return await _change(info, change, input.cart_token)

    @strawberry.mutation
    async def remove_discount_code(self, info: CartInfo, input: RemoveDiscountCodeInput) -> CartPayload:
        return await _change(
            info, lambda owner: info.context.carts.set_choice(owner, discount_code=None), input.cart_token
        )

    @strawberry.federation.mutation(
        inaccessible=True,
        description="Internal (orders only): the price step of checkout. Claim the cart for one checkout, "
        "read its lines and price them for the destination (its discount uses counted); a refusal gives the cart back.",
    )
    async def begin_priced_checkout(
        self, info: CartInfo, input: BeginPricedCheckoutInput
    ) -> BeginPricedCheckoutPayload:
        async def perform(_: str) -> BeginPricedCheckoutPayload:
            user_id, checkout_id = _checkout_ids(input.user_id, input.checkout_id)
            region = (input.region or "").strip() or None
            destination = Destination(clean_country(input.country, ["input", "country"]), region)
            carts = info.context.carts
            owner = _checkout_owner(info, user_id, input.cart_token)
            lines = await carts.begin_checkout(owner, checkout_id)
            claimed = [
                CheckoutLine(product_id=strawberry.ID(str(p)), variant_id=strawberry.ID(str(v)), quantity=q)
                for p, v, q in lines
            ]
            if not lines:
                return BeginPricedCheckoutPayload(lines=claimed)
            try:
                variants = [(v, q) for _, v, q in lines]
                quote = await carts.price_checkout(
                    owner, checkout_id, variants, destination, info.context.currency, customer=user_id
                )
            except BaseException:
                await carts.release_checkout(owner, checkout_id)
                raise
            return BeginPricedCheckoutPayload(lines=claimed, priced=priced_checkout(quote) if quote else None)

        return await mutate(info, BeginPricedCheckoutPayload, perform, allow=internal("orders"))

    @strawberry.federation.mutation(
        inaccessible=True, description="Internal (orders only): a failed checkout gives the cart back."
    )
    async def release_checkout(self, info: CartInfo, input: CartCheckoutInput) -> ReleaseCheckoutPayload:
        async def perform(_: str) -> ReleaseCheckoutPayload:
            user_id, checkout_id = _checkout_ids(input.user_id, input.checkout_id)
            owner = _checkout_owner(info, user_id, input.cart_token)
            return ReleaseCheckoutPayload(released=await info.context.carts.release_checkout(owner, checkout_id))

        return await mutate(info, ReleaseCheckoutPayload, perform, allow=internal("orders"))

    @strawberry.federation.mutation(
        inaccessible=True, description="Internal (orders only): take what an order bought out of the cart."
    )
    async def complete_checkout(self, info: CartInfo, input: CompleteCheckoutInput) -> CompleteCheckoutPayload:
        async def perform(_: str) -> CompleteCheckoutPayload:
            user_id, checkout_id = _checkout_ids(input.user_id, input.checkout_id)
            # Lines are variants; an order from before variants names the product, whose variant has its id.
            lines = [(parse_uuid(line.variant_id or line.product_id), line.quantity) for line in input.lines]
            if any(pid is None for pid, _ in lines):
                raise bad_input("variantId must be a UUID.")
            removed = await info.context.carts.complete_checkout(
                _checkout_owner(info, user_id, input.cart_token),
                checkout_id,
                [(pid, qty) for pid, qty in lines if pid is not None],
            )
            return CompleteCheckoutPayload(removed=removed)

        return await mutate(info, CompleteCheckoutPayload, perform, allow=internal("orders"))


async def _quote_of(info: CartInfo, owner: Owner, *, code: str | None = None) -> Quote:
    """The owner's cart priced now (with ``code`` entered instead of its own, when given)."""
    if isinstance(owner, Guest):
        row = await info.context.loaders.cart.load(owner.cart_id)
    else:
        row = await info.context.loaders.cart_of_user.load(owner)
    if row is None or row.merged_at is not None:
        raise guest_tokens.refused("not valid")
    state = CartState.of(row)
    if code is not None:
        state = CartState(state.destination, state.method_id, code, state.customer)
    return await info.context.loaders.quote.load((row.id, state))


def _checkout_owner(info: CartInfo, user_id: uuid.UUID, cart_token: str | None) -> Owner:
    """Whose cart a checkout claims: the user's, or (a guest's checkout) the cart its token names."""
    return info.context.guest(cart_token) if cart_token is not None else user_id


def _checkout_ids(user: strawberry.ID, checkout: strawberry.ID) -> tuple[uuid.UUID, uuid.UUID]:
    user_id, checkout_id = parse_uuid(user), parse_uuid(checkout)
    if user_id is None or checkout_id is None:
        raise bad_input("userId and checkoutId must be UUIDs.")
    return user_id, checkout_id


schema = federated_schema(
    query=Query,
    mutation=Mutation,
    types=[Cart, User, Product, ProductVariant],
)
