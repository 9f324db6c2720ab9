// Order event ids increase in commit order (decimal strings); the feed keeps the last one it
// showed, resumes after it on reconnect, and drops anything at or before it (a replay's overlap).

export function eventIdAfter(id: string, last: string | null): boolean {
  if (last === null) return true;
  if (/^\d+$/.test(id) && /^\d+$/.test(last)) return BigInt(id) > BigInt(last);
  return id > last;
}

/** The statuses an administrator can move an order to from `status` (the orders subgraph's rules: an
 * order becomes PAID only when its payment is authorised, never by hand). */
export function nextStatuses(status: string): Array<'PAID' | 'SHIPPED' | 'DELIVERED' | 'CANCELLED'> {
  switch (status) {
    case 'PENDING_PAYMENT':
      return ['CANCELLED'];
    case 'PAID':
      return ['SHIPPED', 'CANCELLED'];
    case 'SHIPPED':
      return ['DELIVERED'];
    default:
      return [];
  }
}
