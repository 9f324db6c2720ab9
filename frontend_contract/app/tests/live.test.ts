// keepSubscribed against a stand-in for Apollo's client.subscribe: the first subscription
// fails (as when the router closes the socket with 4401 at token expiry), the next ones work.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Observable, type FetchResult } from '@apollo/client/core';
import { OrderEventsDocument, type OrderEventsSubscription } from '../src/gql/graphql';
import { keepSubscribed, SocketWatch, type SocketEvents } from '../src/lib/live';
import { eventIdAfter } from '../src/admin/events';

type Event = OrderEventsSubscription['orderEvents'];
const event = (id: string): Event => ({
  id,
  type: 'CREATED',
  occurredAt: '2026-01-01T00:00:00Z',
  order: {
    id: `o${id}`,
    number: `SG-${id}`,
    status: 'PENDING_PAYMENT',
    createdAt: '',
    updatedAt: '',
    itemCount: 1,
    total: { amount: '1.00', currencyCode: 'USD' },
    user: { id: 'u', name: 'U', email: 'u@x' },
    guestEmail: null,
  },
});

/** Answers each subscribe with the next script: events to emit, then 'fail' or nothing (stay open). */
function fakeClient(scripts: Array<{ events: string[]; then?: 'fail' }>) {
  const calls: Array<{ after: string | null }> = [];
  let open = 0;
  const client = {
    subscribe: (options: { variables?: { after?: string | null } }) => {
      calls.push({ after: options.variables?.after ?? null });
      const script = scripts.shift() ?? { events: [] };
      return new Observable<FetchResult<OrderEventsSubscription>>((observer) => {
        open += 1;
        for (const id of script.events) observer.next({ data: { orderEvents: event(id) } });
        if (script.then === 'fail') observer.error(new Error('Socket closed with event 4401 Token expired'));
        return () => {
          open -= 1;
        };
      });
    },
  };
  return { client: client as never, calls, open: () => open };
}

afterEach(() => vi.useRealTimers());

describe('keepSubscribed', () => {
  it('resubscribes after a failure, resuming after the last event it delivered', async () => {
    vi.useFakeTimers();
    const fake = fakeClient([{ events: ['1', '2'], then: 'fail' }, { events: ['2', '3'] }]);
    let lastId: string | null = null;
    const shown: string[] = [];
    const errors: number[] = [];
    const stop = keepSubscribed(
      fake.client,
      OrderEventsDocument,
      () => ({ after: lastId }),
      {
        onData: ({ orderEvents }) => {
          if (!eventIdAfter(orderEvents.id, lastId)) return;
          lastId = orderEvents.id;
          shown.push(orderEvents.id);
        },
        onError: (_e, wait) => errors.push(wait),
      },
      1000,
    );
    await vi.advanceTimersByTimeAsync(0); // the Observable delivers what it emits while starting a tick later
    expect(shown).toEqual(['1', '2']);
    expect(errors).toEqual([1000]);
    await vi.advanceTimersByTimeAsync(999);
    expect(fake.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toEqual([{ after: null }, { after: '2' }]);
    expect(shown).toEqual(['1', '2', '3']); // '2' replayed by the overlap is shown once
    stop();
    expect(fake.open()).toBe(0);
  });

  it('backs off while failures repeat and stops retrying once stopped', async () => {
    vi.useFakeTimers();
    const fake = fakeClient([
      { events: [], then: 'fail' },
      { events: [], then: 'fail' },
      { events: [], then: 'fail' },
    ]);
    const waits: number[] = [];
    const stop = keepSubscribed(fake.client, OrderEventsDocument, () => ({ after: null }), { onData: () => undefined, onError: (_e, w) => waits.push(w) }, 100);
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(100);
    await vi.advanceTimersByTimeAsync(200);
    expect(waits).toEqual([100, 200, 400]);
    stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.calls).toHaveLength(3);
  });
});

describe('SocketWatch', () => {
  it('follows the socket from the start and counts the comebacks', () => {
    const listeners: Record<string, (...args: unknown[]) => void> = {};
    const ws = { on: (event: string, listener: (...args: unknown[]) => void) => ((listeners[event] = listener), () => undefined) } as SocketEvents;
    const watch = new SocketWatch(ws);
    let changes = 0;
    watch.subscribe(() => changes++);
    expect(watch.current).toEqual({ connected: false, reconnects: 0 });
    listeners.connected(null, null, false);
    expect(watch.current).toEqual({ connected: true, reconnects: 0 });
    listeners.closed({ code: 1006 });
    listeners.connected(null, null, true);
    expect(watch.current).toEqual({ connected: true, reconnects: 1 });
    expect(changes).toBe(3);
  });
});
