import { ServerConnection } from '@jupyterlab/services';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IEntry } from '../contract';
import type { IWebSocketLike } from '../queue/eventstream';
import { QueueService } from '../queue/service';
import { makeEntry } from './fixtures';

class FakeSocket implements IWebSocketLike {
  static all: FakeSocket[] = [];
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  onopen: ((event: any) => void) | null = null;
  onmessage: ((event: any) => void) | null = null;
  onclose: ((event: any) => void) | null = null;
  onerror: ((event: any) => void) | null = null;
  close(): void {
    this.onclose?.({});
  }
}

function makeService(): QueueService {
  FakeSocket.all = [];
  return new QueueService({
    serverSettings: ServerConnection.makeSettings({
      baseUrl: 'http://server/base/',
      wsUrl: 'ws://server/base/',
      token: 'secret',
      appendToken: true
    }),
    WebSocket: FakeSocket
  });
}

describe('QueueService', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('opens the events websocket with the token', () => {
    const service = makeService();
    expect(FakeSocket.all[0].url).toBe(
      'ws://server/base/api/queue/events?token=secret'
    );
    service.dispose();
  });

  it('long-polls an entry while the events websocket is down', async () => {
    const service = makeService();
    const entry = makeEntry({ state: 'running', position: null });
    service.store.applyEntries([entry]);
    const done: IEntry = { ...entry, state: 'done', execution_count: 1 };
    const get = vi
      .spyOn(service.client, 'get')
      .mockResolvedValueOnce(entry)
      .mockResolvedValueOnce(done);
    await expect(service.waitFinished(entry.id)).resolves.toMatchObject({
      state: 'done'
    });
    expect(get).toHaveBeenCalledTimes(2);
    expect(get).toHaveBeenCalledWith(entry.id, 30);
    service.dispose();
  });

  it('waits for events while the websocket is open, without polling', async () => {
    const service = makeService();
    FakeSocket.all[0].onopen?.({});
    const get = vi.spyOn(service.client, 'get');
    const list = vi.spyOn(service.client, 'list').mockResolvedValue([]);
    const entry = makeEntry({ state: 'running', position: null });
    service.store.applyEntries([entry]);
    const finished = service.waitFinished(entry.id);
    FakeSocket.all[0].onmessage?.({
      data: JSON.stringify({
        seq: 1,
        type: 'entry',
        entry: { ...entry, state: 'error' }
      })
    });
    await expect(finished).resolves.toMatchObject({ state: 'error' });
    expect(get).not.toHaveBeenCalled();
    list.mockRestore();
    service.dispose();
  });

  it('forgets an entry the server no longer knows', async () => {
    const service = makeService();
    const entry = makeEntry({ state: 'queued' });
    service.store.applyEntries([entry]);
    const response = new Response('{"message": "no entry"}', { status: 404 });
    vi.spyOn(service.client, 'get').mockRejectedValue(
      new ServerConnection.ResponseError(response)
    );
    await expect(service.waitFinished(entry.id)).rejects.toThrow(
      /no longer known/
    );
    expect(service.store.entry(entry.id)).toBeUndefined();
    service.dispose();
  });

  it('resyncs what it tracks when the stream opens with nothing to replay', async () => {
    const service = makeService();
    const list = vi.spyOn(service.client, 'list').mockResolvedValue([]);
    vi.spyOn(service.client, 'kernelStatus').mockRejectedValue(new Error('x'));
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const tracker = service.trackKernel('k1');
    service.trackPath('nb.ipynb');
    expect(list).toHaveBeenCalledTimes(2);
    FakeSocket.all[0].onopen?.({});
    expect(list).toHaveBeenCalledTimes(4);
    tracker.dispose();
    service.dispose();
  });
});
