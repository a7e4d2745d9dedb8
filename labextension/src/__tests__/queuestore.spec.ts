import { describe, expect, it } from 'vitest';
import { QueueStore } from '../queue/queuestore';
import { makeEntry, makeStatus } from './fixtures';

describe('QueueStore', () => {
  it('shows queued entries at their place and moves them up as others start', () => {
    const store = new QueueStore();
    const a = makeEntry({ position: 0 });
    const b = makeEntry({ position: 1 });
    const c = makeEntry({ position: 2 });
    store.applyEntries([a, b, c]);
    expect([a, b, c].map(e => store.position(e.id))).toEqual([0, 1, 2]);

    store.applyEvent({
      seq: 1,
      type: 'entry',
      entry: { ...a, state: 'running', position: null }
    });
    expect(store.position(a.id)).toBeNull();
    expect(store.position(b.id)).toBe(0);
    expect(store.position(c.id)).toBe(1);
    expect(store.runningEntry('k1')?.id).toBe(a.id);

    store.applyEntries([
      { ...b, state: 'cancelled', position: null, reason: 'cancelled by bob' }
    ]);
    expect(store.position(c.id)).toBe(0);
    expect(store.cellEntry('nb.ipynb', b.cell_id!)?.reason).toBe(
      'cancelled by bob'
    );
  });

  it('inserts at the position the server gave', () => {
    const store = new QueueStore();
    const first = makeEntry({ position: 0 });
    const last = makeEntry({ position: 2 });
    store.applyEntries([first, last]);
    const middle = makeEntry({ position: 1 });
    store.applyEntries([middle]);
    expect(store.position(middle.id)).toBe(1);
    expect(store.position(last.id)).toBe(2);
  });

  it('never moves an entry back (a stale answer after an event)', () => {
    const store = new QueueStore();
    const entry = makeEntry();
    store.applyEntries([
      { ...entry, state: 'done', position: null, execution_count: 3 }
    ]);
    store.applyEntries([entry]);
    expect(store.entry(entry.id)?.state).toBe('done');
    expect(store.position(entry.id)).toBeNull();
  });

  it('keeps the latest entry of each cell', () => {
    const store = new QueueStore();
    const old = makeEntry({ cell_id: 'x', state: 'cancelled', position: null });
    const fresh = makeEntry({ cell_id: 'x' });
    store.applyEntries([fresh]);
    store.applyEntries([old]);
    expect(store.cellEntry('nb.ipynb', 'x')?.id).toBe(fresh.id);
  });

  it('tells who waits when an entry ends', async () => {
    const store = new QueueStore();
    const entry = makeEntry();
    store.applyEntries([entry]);
    const waiting = store.whenFinished(entry.id);
    store.applyEntries([{ ...entry, state: 'running', position: null }]);
    store.applyEntries([{ ...entry, state: 'error', position: null }]);
    await expect(waiting).resolves.toMatchObject({
      id: entry.id,
      state: 'error'
    });
    await expect(store.whenFinished(entry.id)).resolves.toMatchObject({
      state: 'error'
    });
  });

  it('rejects waiters of an entry it forgets', async () => {
    const store = new QueueStore();
    const entry = makeEntry();
    store.applyEntries([entry]);
    const waiting = store.whenFinished(entry.id);
    store.forget(entry.id);
    await expect(waiting).rejects.toThrow(/no longer known/);
  });

  it('takes a kernel listing as the truth: order kept, unknown entries forgotten', () => {
    const store = new QueueStore();
    const gone = makeEntry({ position: 0 });
    store.applyEntries([gone]);
    const running = makeEntry({ state: 'running', position: null });
    const q1 = makeEntry({ position: 0 });
    const q2 = makeEntry({ position: 1 });
    const other = makeEntry({ kernel_id: 'k2' });
    store.applyEntries([other]);
    store.applyKernelListing('k1', [running, q1, q2]);
    expect(store.entry(gone.id)).toBeUndefined();
    expect(store.position(q1.id)).toBe(0);
    expect(store.position(q2.id)).toBe(1);
    expect(store.entry(other.id)).toBeDefined();
    expect(
      store
        .activeEntries('nb.ipynb')
        .map(e => e.id)
        .sort()
    ).toEqual([running.id, q1.id, q2.id, other.id].sort());
  });

  it('remembers a bounded number of finished entries', () => {
    const store = new QueueStore({ maxFinished: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const entry = makeEntry({ state: 'done', position: null });
      ids.push(entry.id);
      store.applyEntries([entry]);
    }
    expect(ids.filter(id => store.entry(id) !== undefined)).toEqual(
      ids.slice(7)
    );
  });

  it('emits a change for the kernel with the entries that moved', () => {
    const store = new QueueStore();
    const a = makeEntry({ position: 0 });
    const b = makeEntry({ position: 1 });
    store.applyEntries([a, b]);
    const changes: string[][] = [];
    store.changed.connect((_, change) =>
      changes.push(change.entries.map(e => `${e.id}:${e.position}`))
    );
    store.applyEntries([{ ...a, state: 'running', position: null }]);
    expect(changes).toEqual([[`${a.id}:null`, `${b.id}:0`]]);
  });

  it('records kernel statuses and asks for a resync after a gap', () => {
    const store = new QueueStore();
    const seen: string[] = [];
    store.kernelChanged.connect((_, status) => seen.push(status.status));
    let resyncs = 0;
    store.resyncNeeded.connect(() => (resyncs += 1));
    store.applyEvent({ seq: 1, type: 'kernel', status: makeStatus() });
    store.applyEvent({ seq: 2, type: 'kernel', status: makeStatus() });
    store.applyEvent({
      seq: 3,
      type: 'kernel',
      status: makeStatus({
        status: 'dead',
        execution_state: 'dead',
        reason: 'killed by signal 9'
      })
    });
    store.applyEvent({ type: 'gap', oldest: 10 });
    expect(seen).toEqual(['running', 'dead']);
    expect(store.kernelStatus('k1')?.reason).toBe('killed by signal 9');
    expect(resyncs).toBe(1);
  });

  it('never lets a REST answer hide what an event said after the request was sent', () => {
    const store = new QueueStore();
    const entry = makeEntry({ state: 'running', position: null });
    store.applyEntries([entry]);
    // The page answers input() and reads the clock as it sends the request.
    const waiting = {
      ...entry,
      state: 'awaiting_input' as const,
      input_request: { prompt: 'name? ', password: false }
    };
    store.applyEvent({ seq: 1, type: 'entry', entry: waiting });
    store.inputAnswered(entry.id);
    expect(store.entry(entry.id)?.state).toBe('running');
    const asOf = store.clock;
    // The kernel asks again before the answer to the POST comes back...
    store.applyEvent({
      seq: 2,
      type: 'entry',
      entry: { ...entry, state: 'running' }
    });
    store.applyEvent({
      seq: 3,
      type: 'entry',
      entry: { ...waiting, input_request: { prompt: 'age? ', password: false } }
    });
    // ...so the answer (running) is older than the event and changes nothing.
    store.applyEntries([{ ...entry, state: 'running' }], asOf);
    expect(store.entry(entry.id)?.state).toBe('awaiting_input');
    expect(store.entry(entry.id)?.input_request?.prompt).toBe('age? ');
    // A listing sent after the event is taken as it is.
    const later = store.clock;
    store.applyKernelListing('k1', [{ ...entry, state: 'running' }], later);
    expect(store.entry(entry.id)?.state).toBe('running');
    // An answer further along (terminal) always wins.
    store.applyEntries([{ ...entry, state: 'done' }], asOf);
    expect(store.entry(entry.id)?.state).toBe('done');
  });

  it('keeps entries an event brought while a listing was on its way', () => {
    const store = new QueueStore();
    const asOf = store.clock;
    const fresh = makeEntry({ position: 0 });
    store.applyEvent({ seq: 1, type: 'entry', entry: fresh });
    store.applyKernelListing('k1', [], asOf);
    expect(store.entry(fresh.id)).toBeDefined();
    store.applyKernelListing('k1', [], store.clock);
    expect(store.entry(fresh.id)).toBeUndefined();
  });

  it('does not let an older status answer replace a kernel event', () => {
    const store = new QueueStore();
    const asOf = store.clock;
    store.applyEvent({
      seq: 1,
      type: 'kernel',
      status: makeStatus({ status: 'dead', reason: 'killed by SIGKILL' })
    });
    store.applyKernelStatus(makeStatus({ status: 'running' }), asOf);
    expect(store.kernelStatus('k1')?.status).toBe('dead');
  });

  it('remembers the last crash after the kernel is back', () => {
    let now = Date.UTC(2024, 0, 1, 12, 0, 0);
    const store = new QueueStore({ now: () => now });
    store.applyKernelStatus(makeStatus());
    expect(store.lastCrash('k1')).toBeUndefined();
    store.applyKernelStatus(
      makeStatus({ status: 'autorestarting', reason: 'kernel died (SIGKILL)' })
    );
    now += 2000;
    store.applyKernelStatus(makeStatus({ status: 'running', reason: null }));
    expect(store.lastCrash('k1')).toEqual({
      reason: 'kernel died (SIGKILL)',
      status: 'autorestarting',
      at: new Date(Date.UTC(2024, 0, 1, 12, 0, 0))
    });
  });
});
