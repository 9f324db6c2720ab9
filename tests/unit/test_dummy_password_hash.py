"""The hash a sign-in with an unknown email is checked against costs a full argon2 derivation."""

from __future__ import annotations

import pytest
from argon2.exceptions import VerifyMismatchError

from subgraphs.users.service import _DUMMY_HASH, _hasher


def test_dummy_hash_is_well_formed_and_never_matches() -> None:
    # A mismatch (not InvalidHashError) means argon2 derived the digest: as slow as a wrong password.
    with pytest.raises(VerifyMismatchError):
        _hasher.verify(_DUMMY_HASH, "any password")


def test_dummy_hash_has_the_hashers_parameters() -> None:
    # Same cost as a real hash: nothing to rehash, nothing cheaper to verify.
    assert not _hasher.check_needs_rehash(_DUMMY_HASH)
