"""A deterministic demo catalog: 12 categories, 1,200 products with believable names and prices."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from subgraphs.kit.config import Settings
from subgraphs.kit.db import Database

from .models import categories, products

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
PRODUCTS_PER_CATEGORY = 100
SEED_CHUNK = 100  # products per INSERT: the progress bar's step


def demo_products(currency: str, category_ids: dict[str, object]) -> list[dict[str, object]]:
    rng = random.Random(20261121)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    for slug, (_, (low, high), nouns, adjectives, brands) in CATEGORIES.items():
        seen: set[str] = set()
        while len(seen) < PRODUCTS_PER_CATEGORY:
            brand, adjective, noun, colour = (
                rng.choice(brands),
                rng.choice(adjectives),
                rng.choice(nouns),
                rng.choice(COLOURS),
            )
            name = f"{brand} {adjective} {noun} — {colour}"
            if name in seen:
                continue
            seen.add(name)
            whole = int(low + (high - low) * rng.random() ** 2)  # most items at the cheap end
            cents = rng.choice([99, 99, 95, 49, 0])
            index = len(rows) + 1
            rows.append(
                {
                    "sku": f"{slug[:3].upper()}-{index:05d}",
                    "name": name,
                    "description": f"The {adjective.lower()} {noun.lower()} from {brand}, in {colour.lower()}. "
                    f"Designed for everyday use and built to last.",
                    "price_minor": whole * 100 + cents,
                    "currency": currency,
                    "stock": 0 if rng.random() < 0.08 else rng.randint(1, 250),
                    "image_url": f"https://picsum.photos/seed/{slug}-{index}/600/600",
                    "active": rng.random() > 0.02,
                    "category_id": category_ids[slug],
                    "created_at": start + timedelta(minutes=7 * index),
                    "updated_at": start + timedelta(minutes=7 * index),
                }
            )
    return rows


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
                    await conn.execute(insert(products).values(chunk).on_conflict_do_nothing(index_elements=["sku"]))
                    if progress is not None:
                        progress(start + len(chunk), len(rows))
        return len(rows)
    finally:
        await db.dispose()
