"""The storefront's contract with the graph: the operations it sends, and their manifest.

``operations/`` holds one ``.graphql`` file per operation, named as the React
storefront names them (``ProductList.graphql`` holds ``query ProductList``).
``manifest.json`` is their persisted-query manifest in Apollo's format, written
by ``uv run python -m frontend_contract.manifest`` (``--check`` only verifies it).
The contract test fails when the manifest is stale or when an operation no
longer validates against the router's API schema. ``schema.graphql`` is that API
schema as the app was last typed against it (``api_schema.py`` guards breaking
changes), ``app/`` the React storefront and admin dashboard built from all of it
(``build.py`` builds it); README.md says what lives where.
"""
