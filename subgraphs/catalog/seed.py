"""A deterministic demo catalog: 12 categories, 300 products with options and ~1,000 variants, believable
names and prices."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.config import Settings
from subgraphs.kit.db import Database

from .models import categories, product_media, product_options, product_variants, products

# slug: (name, price range in whole units, nouns, adjectives, brands)
CATEGORIES: dict[str, tuple[str, tuple[int, int], list[str], list[str], list[str]]] = {
    "audio": (
        "Audio",
        (19, 499),
        ["Headphones", "Earbuds", "Bluetooth Speaker", "Soundbar", "Turntable", "Studio Monitor"],
        ["Wireless", "Noise-Cancelling", "Portable", "Hi-Fi", "Compact"],
        ["Sonora", "Auralis", "Bassline", "Echo Peak"],
    ),
    "computers": (
        "Computers",
        (49, 2499),
        ["Laptop", "Mechanical Keyboard", "Wireless Mouse", '27" Monitor', "USB-C Dock", "External SSD"],
        ["Ultralight", "Pro", "Ergonomic", "Gaming", "Slim"],
        ["Vertex", "Nimbus", "Quanta", "Lumen"],
    ),
    "kitchen": (
        "Kitchen",
        (9, 399),
        ["Chef's Knife", "Cast Iron Skillet", "French Press", "Stand Mixer", "Cutting Board", "Espresso Machine"],
        ["Stainless", "Non-Stick", "Handcrafted", "Professional", "Enamelled"],
        ["Copperline", "Hearth & Co", "Ostara", "Mesa"],
    ),
    "home": (
        "Home & Living",
        (12, 899),
        ["Throw Blanket", "Table Lamp", "Ceramic Vase", "Linen Duvet Cover", "Wall Clock", "Scented Candle"],
        ["Minimalist", "Cozy", "Scandinavian", "Vintage", "Handwoven"],
        ["Nordhus", "Willow & Oak", "Casa Lume", "Fernway"],
    ),
    "outdoor": (
        "Outdoor",
        (15, 699),
        ["Hiking Backpack", "Camping Tent", "Sleeping Bag", "Trekking Poles", "Headlamp", "Water Filter"],
        ["Ultralight", "Waterproof", "4-Season", "Packable", "Rugged"],
        ["Ridgeline", "Summit Supply", "Trailhead", "Northfork"],
    ),
    "fitness": (
        "Fitness",
        (9, 1299),
        ["Yoga Mat", "Adjustable Dumbbells", "Resistance Bands", "Foam Roller", "Jump Rope", "Rowing Machine"],
        ["Non-Slip", "Heavy-Duty", "Compact", "Eco", "Pro"],
        ["Corefit", "Pulse", "Kinetic", "IronLeaf"],
    ),
    "books": (
        "Books",
        (8, 69),
        ["Cookbook", "Field Guide", "Novel", "Atlas", "Poetry Collection", "Design Handbook"],
        ["Illustrated", "Hardcover", "Collector's", "Pocket", "Annotated"],
        ["Larkspur Press", "Inkwell", "Folio House", "Meridian"],
    ),
    "toys": (
        "Toys & Games",
        (7, 249),
        ["Board Game", "Puzzle", "Building Set", "Plush Bear", "Kite", "Wooden Train Set"],
        ["Classic", "Educational", "1000-Piece", "Family", "Deluxe"],
        ["Playwright", "Kidoodle", "Tinker Tree", "Merry Go"],
    ),
    "beauty": (
        "Beauty",
        (6, 159),
        ["Face Serum", "Moisturiser", "Lip Balm", "Hair Oil", "Clay Mask", "Body Wash"],
        ["Hydrating", "Vegan", "Fragrance-Free", "Organic", "Brightening"],
        ["Bloom Lab", "Verdant", "Pure Ritual", "Solstice"],
    ),
    "apparel": (
        "Apparel",
        (12, 349),
        ["Merino Sweater", "Denim Jacket", "Rain Shell", "Oxford Shirt", "Chino Trousers", "Wool Beanie"],
        ["Organic Cotton", "Recycled", "Relaxed-Fit", "Tailored", "Lightweight"],
        ["Harbor & Pine", "Thread Theory", "Loom", "Fjellstad"],
    ),
    "shoes": (
        "Shoes",
        (29, 329),
        ["Running Shoes", "Leather Boots", "Canvas Sneakers", "Trail Runners", "Slippers", "Sandals"],
        ["Cushioned", "Waterproof", "Handmade", "Minimalist", "All-Weather"],
        ["Stride", "Cobbler & Sons", "Gravel", "Airloft"],
    ),
    "garden": (
        "Garden",
        (5, 499),
        ["Pruning Shears", "Raised Bed Kit", "Watering Can", "Herb Seed Set", "Garden Hose", "Compost Bin"],
        ["Galvanised", "Heirloom", "Expandable", "Ergonomic", "Weatherproof"],
        ["Greenthumb", "Potting Shed", "Terra", "Wildroot"],
    ),
}
COLOURS = ["Black", "White", "Slate", "Sage", "Navy", "Sand", "Terracotta", "Olive", "Graphite", "Ivory"]
SIZES = {"apparel": ["XS", "S", "M", "L", "XL"], "shoes": ["38", "39", "40", "41", "42", "43", "44"]}
# Categories whose products come in one variant only (no colours).
SINGLE = {"books"}
# A unit's shipping weight in grams, by category (as migrations/0006_variant_weights.sql sets for an
# older demo catalog); a larger size weighs a little more.
WEIGHTS = {
    "audio": 400,
    "computers": 1800,
    "kitchen": 2500,
    "home": 1500,
    "outdoor": 2000,
    "fitness": 6000,
    "books": 450,
    "toys": 600,
    "beauty": 200,
    "apparel": 350,
    "shoes": 900,
    "garden": 3000,
}
PRODUCTS_PER_CATEGORY = 25
SEED_CHUNK = 25  # products per INSERT: the progress bar's step


def demo_products(currency: str, category_ids: dict[str, object]) -> list[dict[str, object]]:
    """~300 products (25 per category), each with its options and variants: a colour option (2-4
    colours) on most, sizes on apparel and shoes; books have one default variant."""
    rng = random.Random(20261121)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    for slug, (_, (low, high), nouns, adjectives, brands) in CATEGORIES.items():
        seen: set[str] = set()
        while len(seen) < PRODUCTS_PER_CATEGORY:
            brand, adjective, noun = rng.choice(brands), rng.choice(adjectives), rng.choice(nouns)
            name = f"{brand} {adjective} {noun}"
            if name in seen:
                continue
            seen.add(name)
            whole = int(low + (high - low) * rng.random() ** 2)  # most items at the cheap end
            cents = rng.choice([99, 99, 95, 49, 0])
            price = whole * 100 + cents
            index = len(rows) + 1
            sku = f"{slug[:3].upper()}-{index:04d}"
            options: list[tuple[str, list[str]]] = []
            if slug not in SINGLE:
                options.append(("Colour", rng.sample(COLOURS, rng.randint(2, 4))))
            if slug in SIZES:
                sizes = SIZES[slug]
                first = rng.randint(0, 1)
                options.append(("Size", sizes[first : first + rng.randint(3, len(sizes) - first)]))
            variants = []
            for combination in _combinations([values for _, values in options]):
                chosen = dict(zip([n for n, _ in options], combination, strict=True))
                suffix = "-".join(v[:3].upper() for v in combination)
                # A few variants cost more (a premium colour or a large size).
                bump = 0 if rng.random() < 0.8 else rng.choice([500, 1000, 2000])
                variants.append(
                    {
                        "sku": f"{sku}-{suffix}" if suffix else sku,
                        "options": chosen,
                        "price_minor": price + bump,
                        "stock": 0 if rng.random() < 0.08 else rng.randint(1, 120),
                        "weight_grams": _demo_weight(slug, chosen.get("Size")),
                    }
                )
            colours = ", ".join(v.lower() for v in dict(options).get("Colour", []))
            rows.append(
                {
                    "sku": sku,
                    "name": name,
                    "description": f"The {adjective.lower()} {noun.lower()} from {brand}"
                    + (f", in {colours}" if colours else "")
                    + ". Designed for everyday use and built to last.",
                    "price_minor": price,
                    "currency": currency,
                    "stock": 0,
                    "image_url": None,
                    "active": rng.random() > 0.02,
                    "category_id": category_ids[slug],
                    "created_at": start + timedelta(minutes=7 * index),
                    "updated_at": start + timedelta(minutes=7 * index),
                    "options": options,
                    "variants": variants,
                }
            )
    return rows


def _demo_media(
    chunk: list[dict[str, Any]], inserted: dict[str, Any], variants: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A drawn picture per product and colour (its first variant of that colour), or one per product:
    rows only, with the drawing's spec; the pixels are drawn on first request (media.py), so seeding
    stays fast and works offline."""
    rows: list[dict[str, Any]] = []
    by_product: dict[Any, list[dict[str, Any]]] = {}
    for variant in variants:
        by_product.setdefault(variant["product_id"], []).append(variant)
    for product in chunk:
        product_id = inserted.get(product["sku"])
        if product_id is None:
            continue
        seen: set[str] = set()
        for variant in by_product.get(product_id, []):
            colour = variant["options"].get("Colour", "")
            if colour in seen:
                continue
            seen.add(colour)
            rows.append(
                {
                    "id": uuid.uuid5(product_id, f"image:{colour}"),
                    "product_id": product_id,
                    "variant_id": variant["id"] if colour else None,
                    "position": len(seen) - 1,
                    "alt_text": f"{product['name']}" + (f" in {colour.lower()}" if colour else ""),
                    "demo": {"seed": product["sku"], "colour": colour},
                    "content_type": "image/webp",
                    "width": 1280,
                    "height": 1280,
                    "bytes": 0,
                }
            )
    return rows


def _demo_weight(slug: str, size: str | None) -> int:
    base = WEIGHTS.get(slug, 500)
    if size is None or slug not in SIZES:
        return base
    return base + base * SIZES[slug].index(size) // 10


def _combinations(lists: list[list[str]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for values in lists:
        out = [(*prefix, v) for prefix in out for v in values]
    return out


async def seed(settings: Settings, progress: Callable[[int, int], None] | None = None) -> int:
    """Load the demo catalog (idempotent: existing slugs and SKUs are left alone). Returns product count.

    ``progress(done, total)`` is told after each chunk of products. A catalog that already
    has every demo SKU is left as it is without rewriting them (a restart's fast path).
    """
    db = Database(settings.database_url_for("catalog"), "catalog", pool_size=1)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                insert(categories)
                .values(
                    [
                        {"slug": slug, "name": name, "description": f"Everything {name.lower()}."}
                        for slug, (name, *_) in CATEGORIES.items()
                    ]
                )
                .on_conflict_do_nothing(index_elements=["slug"])
            )
            ids = {r.slug: r.id for r in (await conn.execute(select(categories.c.slug, categories.c.id))).all()}
            rows = demo_products(settings.currency, ids)
            present = select(func.count()).where(products.c.sku.in_([row["sku"] for row in rows]))
            if (await conn.execute(present)).scalar_one() < len(rows):
                for start in range(0, len(rows), SEED_CHUNK):
                    chunk = rows[start : start + SEED_CHUNK]
                    await _insert_chunk(conn, chunk)
                    if progress is not None:
                        progress(start + len(chunk), len(rows))
        return len(rows)
    finally:
        await db.dispose()


async def _insert_chunk(conn: AsyncConnection, chunk: list[dict[str, Any]]) -> None:
    product_rows = [{k: v for k, v in row.items() if k not in ("options", "variants")} for row in chunk]
    inserted = {
        r.sku: r.id
        for r in (
            await conn.execute(
                insert(products)
                .values(product_rows)
                .on_conflict_do_nothing(index_elements=["sku"])
                .returning(products.c.sku, products.c.id)
            )
        ).all()
    }
    options, variants = [], []
    for row in chunk:
        product_id = inserted.get(row["sku"])
        if product_id is None:
            continue  # there already
        for position, (name, values) in enumerate(row["options"]):
            options.append({"product_id": product_id, "name": name, "position": position, "values": values})
        for position, variant in enumerate(row["variants"]):
            # A default variant (no options) shares its product's id.
            variant_id = product_id if not row["options"] else uuid.uuid5(product_id, str(variant["sku"]))
            variants.append(
                {
                    "id": variant_id,
                    **variant,
                    "product_id": product_id,
                    "currency": row["currency"],
                    "active": True,
                    "position": position,
                }
            )
    if options:
        await conn.execute(insert(product_options).values(options))
    if variants:
        await conn.execute(insert(product_variants).values(variants).on_conflict_do_nothing(index_elements=["sku"]))
    media = _demo_media(chunk, inserted, variants)
    if media:
        await conn.execute(insert(product_media).values(media))
