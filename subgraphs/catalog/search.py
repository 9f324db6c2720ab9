"""Product search with facets, in PostgreSQL. No GraphQL in here.

A search is at most four statements, whatever the catalog's size or the page's:

1. typo correction and word splitting (only when there is text): each word, and each pair of adjacent
   words joined, is looked up in ``search_words`` (the vocabulary of names, categories and option
   values: migrations/0005_search.sql); a word no vocabulary word starts with is replaced by its
   closest (pg_trgm similarity), and two words that are one word ("head phones") are joined;
2. the page: full-text match (``shop`` configuration: english stemming + unaccent, prefix matching)
   of the corrected words and every filter, ranked by ``ts_rank_cd`` (name before category and
   options before description);
3. the facets, all in one statement: each facet counted under every *other* selected filter, so
   the counts narrow together and a shopper can still widen within a facet; and the total;
4. only when nothing matches: "did you mean", the product name closest to what was typed.
"""

from __future__ import annotations

import itertools
import re
import time
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import Row, text

from subgraphs.kit.db import Database, Read
from subgraphs.kit.domain import InvalidArgument
from subgraphs.kit.money import to_minor
from subgraphs.kit.telemetry import tracer

MAX_WORDS = 8
MAX_TEXT = 200
MAX_OFFSET = 10_000
# Price bands in whole units of the currency: [low, high); the last has no top.
BANDS: tuple[tuple[int, int | None], ...] = ((0, 25), (25, 50), (50, 100), (100, 250), (250, 500), (500, None))

SEARCHES = Counter(
    "shopgraph_catalog_searches", "Product searches, by outcome (results, corrected, empty).", ["outcome"]
)
SEARCH_SECONDS = Histogram(
    "shopgraph_catalog_search_duration_seconds",
    "Time to answer a product search (page, facets and corrections).",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


def band_key(low: int, high: int | None) -> str:
    return f"{low}-{high}" if high is not None else f"{low}-"


BAND_KEYS = [band_key(low, high) for low, high in BANDS]


def fold(value: str) -> str:
    """Lower case without accents, as ``search_text`` and ``search_words`` hold words."""
    decomposed = unicodedata.normalize("NFKD", value.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(value: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(value))[:MAX_WORDS]


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None
    category_ids: tuple[uuid.UUID, ...] = ()
    price_bands: tuple[str, ...] = ()
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    in_stock: bool | None = None
    offset: int = 0
    limit: int = 20


@dataclass
class FacetCount:
    facet: str
    value: str
    label: str
    count: int


@dataclass
class SearchResult:
    rows: list[Row[Any]]
    total: int
    facets: list[FacetCount]
    corrected: str | None = None
    did_you_mean: str | None = None
    words: list[str] = field(default_factory=list)


CORRECT = text(
    """
    SELECT t.i, t.w,
           EXISTS (SELECT 1 FROM search_words s WHERE s.word LIKE t.w || '%') AS known,
           (SELECT s.word FROM search_words s WHERE s.word % t.w
             ORDER BY similarity(s.word, t.w) DESC, s.word LIMIT 1) AS best
    FROM unnest(CAST(:words AS text[])) WITH ORDINALITY AS t(w, i)
    ORDER BY t.i
    """
)


CORRECT_READ = Read(CORRECT)


def _candidates(words: list[str]) -> list[str]:
    """The words and each pair of neighbours joined ("head phones" -> "headphones")."""
    return list(dict.fromkeys(words + [a + b for a, b in itertools.pairwise(words)]))


def _corrected_from(words: list[str], rows: Sequence[Any]) -> list[str]:
    return corrected_words(words, {r.w: bool(r.known) for r in rows}, {r.w: r.best for r in rows})


def corrected_words(words: list[str], known: dict[str, bool], best: dict[str, str | None]) -> list[str]:
    """Join two words that are one ("head phones"), keep the words the vocabulary knows (as a
    prefix: a shopper still typing), replace the others by their closest known word."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if i + 1 < len(words):
            joined = word + words[i + 1]
            if known.get(joined) and not (known.get(word) and known.get(words[i + 1])):
                out.append(joined)
                i += 2
                continue
        out.append(word if known.get(word) or not best.get(word) else str(best[word]))
        i += 1
    return out


class Search:
    def __init__(self, db: Database, currency: str) -> None:
        self.db = db
        self.currency = currency

    def _check(self, query: SearchQuery) -> None:
        if query.text is not None and len(query.text) > MAX_TEXT:
            raise InvalidArgument(f"`query` is at most {MAX_TEXT} characters.")
        if not 0 <= query.offset <= MAX_OFFSET:
            raise InvalidArgument("Invalid cursor.")
        unknown = [b for b in query.price_bands if b not in BAND_KEYS]
        if unknown:
            raise InvalidArgument(f"Unknown price band {unknown[0]!r}; bands are {', '.join(BAND_KEYS)}.")
        if len(query.options) > 5 or any(len(values) > 50 for _, values in query.options):
            raise InvalidArgument("At most 5 options of 50 values each.")
        if len(query.category_ids) > 50:
            raise InvalidArgument("At most 50 categories.")

    async def correct(self, typed: str) -> str:
        """What a shopper meant (the words as ``run`` corrects them): for the plain listing's search.
        On asyncpg directly (``Database.fetch``): it runs on every listing with a search."""
        words = words_of(typed)
        if not words:
            return typed
        rows = await self.db.fetch(CORRECT_READ, words=_candidates(words))
        return " ".join(_corrected_from(words, rows))

    async def _corrected(self, conn: Any, words: list[str]) -> list[str]:
        rows = (await conn.execute(CORRECT, {"words": _candidates(words)})).all()
        return _corrected_from(words, rows)

    async def run(self, query: SearchQuery) -> SearchResult:
        self._check(query)
        started = time.perf_counter()
        with tracer.start_as_current_span("catalog search") as span:
            words = words_of(query.text or "")
            span.set_attributes({"search.words": len(words), "search.filters": _filter_count(query)})
            async with self.db.read() as conn:
                corrected = words
                if words:
                    corrected = await self._corrected(conn, words)
                params, where = self._filters(query, corrected)
                page = (await conn.execute(text(self._page_sql(query, where, bool(corrected))), params)).all()
                facet_rows = (await conn.execute(text(self._facet_sql(query, where)), params)).all()
                total = next((r.n for r in facet_rows if r.facet == "total"), 0)
                did_you_mean = None
                if total == 0 and words:
                    suggestion = (
                        await conn.execute(
                            text(
                                "SELECT name FROM products WHERE active AND word_similarity(:q, search_text) > 0.3 "
                                "ORDER BY word_similarity(:q, search_text) DESC, name LIMIT 1"
                            ),
                            {"q": " ".join(corrected)},
                        )
                    ).scalar_one_or_none()
                    did_you_mean = suggestion
            outcome = "empty" if total == 0 else "corrected" if corrected != words else "results"
            SEARCHES.labels(outcome).inc()
            span.set_attribute("search.total", total)
        SEARCH_SECONDS.observe(time.perf_counter() - started)
        facets = [FacetCount(r.facet, r.value, r.label, r.n) for r in facet_rows if r.facet != "total"]
        return SearchResult(
            rows=list(page),
            total=total,
            facets=facets,
            corrected=" ".join(corrected) if corrected != words else None,
            did_you_mean=did_you_mean,
            words=corrected,
        )

    # --- SQL ---------------------------------------------------------------------------------
    # Every value is a bind parameter; the SQL's shape depends only on which filters are set (the
    # option names are parameters too).

    def _filters(self, query: SearchQuery, words: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
        params: dict[str, Any] = {"limit": query.limit + 1, "offset": query.offset}
        where: dict[str, str] = {}
        if words:
            params["tsquery"] = " & ".join(f"{w}:*" for w in words)
            where["text"] = "p.search @@ to_tsquery('shop', :tsquery)"
        if query.category_ids:
            params["categories"] = list(query.category_ids)
            where["category"] = "p.category_id = ANY(CAST(:categories AS uuid[]))"
        if query.price_bands:
            parts = []
            for index, key in enumerate(query.price_bands):
                low, high = BANDS[BAND_KEYS.index(key)]
                params[f"band{index}_low"] = to_minor(Decimal(low), self.currency)
                condition = f"p.price_minor >= :band{index}_low"
                if high is not None:
                    params[f"band{index}_high"] = to_minor(Decimal(high), self.currency)
                    condition += f" AND p.price_minor < :band{index}_high"
                parts.append(f"({condition})")
            where["price"] = "(" + " OR ".join(parts) + ")"
        if query.in_stock is not None:
            where["stock"] = "p.stock > 0" if query.in_stock else "p.stock = 0"
        for index, (name, values) in enumerate(query.options):
            params[f"option{index}"] = name
            params[f"option{index}_values"] = list(values)
        return params, where

    def _variant_matches(self, query: SearchQuery, alias: str, without: int | None = None) -> str:
        """The variant ``alias`` has one of the chosen values of every chosen option (but ``without``)."""
        parts = [
            f"({alias}.options ->> :option{i}) = ANY(CAST(:option{i}_values AS text[]))"
            for i in range(len(query.options))
            if i != without
        ]
        return " AND ".join(parts) or "true"

    def _options_sql(self, query: SearchQuery) -> str:
        if not query.options:
            return "true"
        return (
            "EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id AND v.active AND "
            f"{self._variant_matches(query, 'v')})"
        )

    def _page_sql(self, query: SearchQuery, where: dict[str, str], ranked: bool) -> str:
        conditions = " AND ".join(["p.active", *where.values(), self._options_sql(query)])
        rank = "ts_rank_cd(p.search, to_tsquery('shop', :tsquery))" if ranked else "0"
        return f"""
            SELECT p.*, c.slug AS category_slug, c.name AS category_name,
                   c.description AS category_description, {rank} AS rank
            FROM products p LEFT JOIN categories c ON c.id = p.category_id
            WHERE {conditions}
            ORDER BY rank DESC, p.name, p.id
            LIMIT :limit OFFSET :offset
        """

    def _facet_sql(self, query: SearchQuery, where: dict[str, str]) -> str:
        def flag(key: str) -> str:
            return where.get(key, "true")

        option_case = "true"
        if query.options:
            whens = " ".join(
                f"WHEN :option{i} THEN {self._variant_matches(query, 'v', without=i)}"
                for i in range(len(query.options))
            )
            option_case = f"CASE o.key {whens} ELSE {self._variant_matches(query, 'v')} END"
        band_case = " ".join(
            f"WHEN b.price_minor < {to_minor(Decimal(high), self.currency)} THEN '{band_key(low, high)}'"
            for low, high in BANDS
            if high is not None
        )
        last = band_key(*BANDS[-1])
        return f"""
            WITH base AS (
                SELECT p.id, p.category_id, p.price_minor, p.stock,
                       {flag("category")} AS f_category, {flag("price")} AS f_price,
                       {flag("stock")} AS f_stock, {self._options_sql(query)} AS f_options
                FROM products p
                WHERE p.active AND {flag("text")}
            )
            SELECT 'total' AS facet, '' AS value, '' AS label, count(*) AS n FROM base b
                WHERE f_category AND f_price AND f_stock AND f_options
            UNION ALL
            SELECT 'category', c.id::text, c.name, count(*) FROM base b JOIN categories c ON c.id = b.category_id
                WHERE f_price AND f_stock AND f_options GROUP BY c.id, c.name
            UNION ALL
            SELECT 'price', band, band, count(*) FROM (
                SELECT CASE {band_case} ELSE '{last}' END AS band FROM base b
                WHERE f_category AND f_stock AND f_options
            ) bands GROUP BY band
            UNION ALL
            SELECT 'inStock', (b.stock > 0)::text, (b.stock > 0)::text, count(*) FROM base b
                WHERE f_category AND f_price AND f_options GROUP BY b.stock > 0
            UNION ALL
            SELECT 'option', o.value, o.key, count(DISTINCT b.id)
                FROM base b JOIN product_variants v ON v.product_id = b.id AND v.active
                CROSS JOIN LATERAL jsonb_each_text(v.options) o
                WHERE b.f_category AND b.f_price AND b.f_stock AND {option_case}
                GROUP BY o.key, o.value
        """


def _filter_count(query: SearchQuery) -> int:
    return len(query.category_ids) + len(query.price_bands) + len(query.options) + (query.in_stock is not None)


def price_band_label(key: str, currency: str) -> str:
    low, high = key.split("-")
    return f"{low} to {high} {currency}" if high else f"{low}+ {currency}"


def parse_options(options: Sequence[tuple[str, Sequence[str]]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Option filters with their names as stored (case as given; the graph passes them through)."""
    return tuple((name.strip(), tuple(v.strip() for v in values)) for name, values in options if values)
