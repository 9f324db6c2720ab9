"""Who an order mail goes to: the account's address and preferences, asked of users at send time.

Asked, not kept: the worker never holds a copy of accounts that could go stale
(a changed address, a preference turned off a minute ago, a deleted account).
It costs one internal call per message, and while users is unreachable messages
wait and retry like any other transient failure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gql import gql

from subgraphs.kit.service_client import ServiceClient

MAIL_RECIPIENT = gql("query MailRecipient($id: ID!) { mailRecipient(userId: $id) { email name orderUpdateEmails } }")


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    order_update_emails: bool


async def recipient_of(users: ServiceClient, user_id: uuid.UUID) -> Recipient | None:
    """None when the account does not exist (deleted): nobody to mail."""
    result = await users.execute(MAIL_RECIPIENT, {"id": str(user_id)})
    found = result.get("mailRecipient")
    if found is None:
        return None
    return Recipient(found["email"], found["name"], bool(found["orderUpdateEmails"]))
