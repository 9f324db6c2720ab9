// One idempotency key per checkout attempt: the same key for every retry and double click of
// one attempt (the orders subgraph then returns the same order), a new key once the attempt's
// request changes (another address, another cart) or it ended with an order.

export interface AttemptKeys {
  /** The key for this request; the same request gets the same key until `finish()`. */
  keyFor(request: unknown): string;
  /** The attempt placed its order: the next request, even an identical one, is a new attempt. */
  finish(): void;
}

export function attemptKeys(newKey: () => string = () => crypto.randomUUID()): AttemptKeys {
  let current: { request: string; key: string } | null = null;
  return {
    keyFor(request) {
      const text = JSON.stringify(request);
      if (!current || current.request !== text) current = { request: text, key: newKey() };
      return current.key;
    },
    finish() {
      current = null;
    },
  };
}
