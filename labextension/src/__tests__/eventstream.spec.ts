import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { QueueEvent } from '../contract';
import {
  IWebSocketLike,
  QueueEventStream,
  reconnectDelay
} from '../queue/eventstream';

/**
 * A websocket the test drives by hand.
 */
class FakeSocket implements IWebSocketLike {
  static all: FakeSocket[] = [];
  static last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }

  onopen: ((event: any) => void) | null = null;
  onmessage: ((event: any) => void) | null = null;
  onclose: ((event: any) => void) | null = null;
  onerror: ((event: any) => void) | null = null;
  closed = false;

  open(): void {
    this.onopen?.({});
  }
  send(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(): void {
    this.onerror?.({});
    this.onclose?.({});
  }
  close(): void {
    this.closed = true;
  }
}

function makeStream(): { stream: QueueEventStream; events: QueueEvent[] } {
  const stream = new QueueEventStream({
    url: () => 'ws://host/api/queue/events?token=t',
    WebSocket: FakeSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 1000
  });
  const events: QueueEvent[] = [];
  stream.received.connect((_, event) => events.push(event));
  return { stream, events };
}

describe('QueueEventStream', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('connects without since, then reconnects with the last seq after a drop', () => {
    const { stream, events } = makeStream();
    stream.connect();
    expect(FakeSocket.last().url).toBe('ws://host/api/queue/events?token=t');
    FakeSocket.last().open();
    expect(stream.state).toBe('open');
    FakeSocket.last().send({ seq: 7, type: 'kernel', status: {} });
    FakeSocket.last().send({ seq: 8, type: 'kernel', status: {} });
    expect(stream.lastSeq).toBe(8);
    expect(events.map(e => ('seq' in e ? e.seq : null))).toEqual([7, 8]);

    FakeSocket.last().drop();
    expect(stream.state).toBe('closed');
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(100);
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.last().url).toBe(
      'ws://host/api/queue/events?token=t&since=8'
    );
  });

  it('backs off while the server stays unreachable and resets once connected', () => {
    const { stream } = makeStream();
    stream.connect();
    FakeSocket.last().drop(); // 1st failure: 100 ms
    vi.advanceTimersByTime(99);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.last().drop(); // 2nd failure: 200 ms
    vi.advanceTimersByTime(199);
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(3);
    FakeSocket.last().open();
    FakeSocket.last().drop(); // connected in between: back to 100 ms
    vi.advanceTimersByTime(100);
    expect(FakeSocket.all).toHaveLength(4);
    expect(reconnectDelay(10, 100, 1000)).toBe(1000);
  });

  it('passes a gap on and continues from the oldest retained event', () => {
    const { stream, events } = makeStream();
    stream.connect();
    FakeSocket.last().open();
    FakeSocket.last().send({ seq: 3, type: 'kernel', status: {} });
    FakeSocket.last().drop();
    vi.advanceTimersByTime(100);
    FakeSocket.last().open();
    FakeSocket.last().send({ type: 'gap', oldest: 1200 });
    expect(events[events.length - 1]).toEqual({ type: 'gap', oldest: 1200 });
    expect(stream.lastSeq).toBe(1199);
    FakeSocket.last().send({ seq: 1200, type: 'kernel', status: {} });
    expect(stream.lastSeq).toBe(1200);
  });

  it('reports a server restart (seq going back) as a gap', () => {
    const { stream, events } = makeStream();
    stream.connect();
    FakeSocket.last().open();
    FakeSocket.last().send({ seq: 50, type: 'kernel', status: {} });
    FakeSocket.last().drop();
    vi.advanceTimersByTime(100);
    FakeSocket.last().open();
    FakeSocket.last().send({ seq: 1, type: 'kernel', status: {} });
    expect(events.map(e => e.type)).toEqual(['kernel', 'gap', 'kernel']);
    expect(stream.lastSeq).toBe(1);
  });

  it('ignores malformed frames', () => {
    const { stream, events } = makeStream();
    stream.connect();
    FakeSocket.last().onmessage?.({ data: 'not json' });
    FakeSocket.last().onmessage?.({ data: '42' });
    expect(events).toHaveLength(0);
    expect(stream.lastSeq).toBeNull();
  });

  it('reconnects at once on demand and stops for good when disposed', () => {
    const { stream } = makeStream();
    stream.connect();
    FakeSocket.last().open();
    stream.reconnectNow();
    expect(FakeSocket.all[0].closed).toBe(true);
    expect(FakeSocket.all).toHaveLength(2);
    stream.dispose();
    expect(FakeSocket.all[1].closed).toBe(true);
    vi.advanceTimersByTime(10000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(stream.state).toBe('closed');
  });
});
