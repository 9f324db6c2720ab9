"""Checkout economics, kept in the cart subgraph: shipping, tax, discounts and the priced breakdown.

``rules`` (pure), ``store`` (its tables in the cart schema), ``quote`` (a cart's and a
checkout's breakdown), ``admin`` (the shop team's rules), ``graph`` (the graph surface),
``metrics``. See the cart README for why it lives here.
"""
