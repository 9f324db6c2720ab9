"""router/session_cookie.py: which cookie passes, from and to whom (the relay's own rules, no servers)."""

from __future__ import annotations

from router import session_cookie

SET = "shopgraph_refresh=abc.def; Path=/graphql; Max-Age=100; HttpOnly; SameSite=Strict; Secure"
CLEAR = "shopgraph_refresh=; Path=/graphql; Max-Age=0; HttpOnly; SameSite=Strict; Secure"


def test_only_the_named_cookie_is_read_and_only_as_a_plain_token() -> None:
    value_in = session_cookie.value_in
    assert value_in("theme=dark; shopgraph_refresh=0f.a-b_c; x=y", "shopgraph_refresh") == "0f.a-b_c"
    assert value_in("xshopgraph_refresh=1; shopgraph_refresh2=2", "shopgraph_refresh") is None
    assert value_in('shopgraph_refresh="a\\012b"', "shopgraph_refresh") is None  # quoted: could decode to a CR/LF
    assert value_in("shopgraph_refresh=a b", "shopgraph_refresh") is None
    assert value_in("shopgraph_refresh=" + "a" * 300, "shopgraph_refresh") is None
    assert value_in("shopgraph_refresh=", "shopgraph_refresh") is None
    assert value_in(None, "shopgraph_refresh") is None


def test_only_the_configured_subgraphs_cookie_of_that_name_is_relayed() -> None:
    with session_cookie.relaying("shopgraph_refresh", "users") as cookies:
        session_cookie.offer("users", (SET, "tracking=1; Path=/"))
        session_cookie.offer("cart", ("shopgraph_refresh=stolen; Path=/graphql",))  # another subgraph's: dropped
        session_cookie.offer("USERS", (CLEAR,))  # a join__Graph value names the same subgraph
    assert cookies == [SET, CLEAR]
    session_cookie.offer("users", (SET,))  # not relaying (a query, another transport): nowhere to go
    assert cookies == [SET, CLEAR]
