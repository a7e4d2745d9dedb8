import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { IEntry, IKernelStatus, isTerminal } from '../contract';
import { QueueClient } from './client';
import { QueueEventStream, StreamState } from './eventstream';
import { QueueStore } from './queuestore';

/**
 * How long one long poll of an entry waits (seconds) while the events
 * websocket is down.
 */
const POLL_WAIT_SECONDS = 30;

/**
 * The page's connection to the execution queue: the REST client, the events
 * websocket and the store it feeds, shared by every plugin.
 */
export class QueueService implements IDisposable {
  constructor(options: QueueService.IOptions) {
    this.client = new QueueClient(options.serverSettings);
    this.store = new QueueStore();
    const WebSocketCtor = options.WebSocket ?? options.serverSettings.WebSocket;
    this.stream = new QueueEventStream({
      url: () => this.client.wsUrl('api/queue/events'),
      WebSocket: WebSocketCtor
    });
    this.stream.received.connect((_, event) => this.store.applyEvent(event));
    this.store.resyncNeeded.connect(() => void this.resync());
    this.stream.stateChanged.connect(this._onStreamState, this);
    this.stream.connect();
  }

  /**
   * The REST routes.
   */
  readonly client: QueueClient;

  /**
   * What the page knows of the queues and kernels.
   */
  readonly store: QueueStore;

  /**
   * The events websocket.
   */
  readonly stream: QueueEventStream;

  /**
   * Whether the service was disposed.
   */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Keep the entries of a kernel in sync (a full listing now and after every
   * gap in the events). Dispose the result to stop.
   */
  trackKernel(kernelId: string): IDisposable {
    return this._track(this._kernels, kernelId, () =>
      this.syncKernel(kernelId)
    );
  }

  /**
   * Keep the entries of a notebook in sync. Dispose the result to stop.
   */
  trackPath(path: string): IDisposable {
    return this._track(this._paths, path, () => this.syncPath(path));
  }

  /**
   * Fetch every entry the server keeps for a kernel, and its status.
   */
  async syncKernel(kernelId: string): Promise<void> {
    try {
      const asOf = this.store.clock;
      const entries = await this.client.list({ kernelId });
      this.store.applyKernelListing(kernelId, entries, asOf);
    } catch (reason) {
      console.warn(`jupyter-canvas: could not list kernel ${kernelId}`, reason);
    }
    await this.refreshKernelStatus(kernelId);
  }

  /**
   * Fetch every entry the server keeps for a notebook.
   */
  async syncPath(path: string): Promise<void> {
    try {
      const asOf = this.store.clock;
      this.store.applyEntries(await this.client.list({ path }), asOf);
    } catch (reason) {
      console.warn(`jupyter-canvas: could not list ${path}`, reason);
    }
  }

  /**
   * Fetch a kernel's status into the store.
   */
  async refreshKernelStatus(
    kernelId: string
  ): Promise<IKernelStatus | undefined> {
    try {
      const asOf = this.store.clock;
      const status = await this.client.kernelStatus(kernelId);
      this.store.applyKernelStatus(status, asOf);
      return this.store.kernelStatus(kernelId);
    } catch (reason) {
      console.warn(`jupyter-canvas: no status for kernel ${kernelId}`, reason);
      return undefined;
    }
  }

  /**
   * Answer the `input()` an entry waits on (`POST /api/queue/<id>/input`).
   *
   * The entry shows running at once; the next `input()` it makes arrives as a
   * new `awaiting_input` event, which the answer to this request (older) never
   * hides. Rejects with the server's message if the answer was refused.
   */
  async answerInput(entryId: string, value: string): Promise<void> {
    this.store.inputAnswered(entryId);
    const asOf = this.store.clock;
    const entry = await this.client.sendInput(entryId, value);
    this.store.applyEntries([entry], asOf);
  }

  /**
   * Cancel one entry (`DELETE /api/queue/<id>`): a queued one leaves the
   * queue, a running one is interrupted.
   */
  async cancel(entryId: string): Promise<IEntry> {
    const asOf = this.store.clock;
    const entry = await this.client.cancel(entryId);
    this.store.applyEntries([entry], asOf);
    return entry;
  }

  /**
   * Resync everything tracked (after events were lost).
   */
  async resync(): Promise<void> {
    await Promise.all([
      ...[...this._kernels.keys()].map(id => this.syncKernel(id)),
      ...[...this._paths.keys()].map(path => this.syncPath(path))
    ]);
  }

  /**
   * Resolve with the entry once it is terminal.
   *
   * Events bring the end; while the events websocket is down the entry is
   * long-polled instead, so a waiting cell never hangs on a lost connection.
   */
  waitFinished(entryId: string): Promise<IEntry> {
    const finished = this.store.whenFinished(entryId);
    let settled = false;
    finished.then(
      () => (settled = true),
      () => (settled = true)
    );
    const poll = async () => {
      while (!settled && !this._disposed) {
        if (this.stream.state === 'open') {
          await Promise.race([finished, this._nextStreamState()]).catch(
            () => undefined
          );
          continue;
        }
        try {
          const asOf = this.store.clock;
          const entry = await this.client.get(entryId, POLL_WAIT_SECONDS);
          this.store.applyEntries([entry], asOf);
          if (isTerminal(entry.state)) {
            return;
          }
        } catch (reason) {
          if (
            reason instanceof ServerConnection.ResponseError &&
            reason.response.status === 404
          ) {
            this.store.forget(entryId);
            return;
          }
          await new Promise(resolve => setTimeout(resolve, 2000));
        }
      }
    };
    void poll();
    return finished;
  }

  /**
   * Close the websocket and forget everything.
   */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._notifyState();
    this.stream.dispose();
    this.store.dispose();
  }

  private _track(
    counts: Map<string, number>,
    key: string,
    sync: () => Promise<void>
  ): IDisposable {
    const count = counts.get(key) ?? 0;
    counts.set(key, count + 1);
    if (count === 0) {
      void sync();
    }
    let disposed = false;
    return {
      get isDisposed() {
        return disposed;
      },
      dispose: () => {
        if (disposed) {
          return;
        }
        disposed = true;
        const left = (counts.get(key) ?? 1) - 1;
        if (left <= 0) {
          counts.delete(key);
        } else {
          counts.set(key, left);
        }
      }
    };
  }

  private _onStreamState(_: QueueEventStream, state: StreamState): void {
    if (state === 'open') {
      if (this.stream.lastSeq === null) {
        // Nothing to replay from: what happened before the connection (or
        // while it was down) comes from REST.
        void this.resync();
      }
    }
    this._notifyState();
  }

  private _nextStreamState(): Promise<void> {
    return new Promise(resolve => this._stateWaiters.push(resolve));
  }

  private _notifyState(): void {
    const waiters = this._stateWaiters;
    this._stateWaiters = [];
    waiters.forEach(resolve => resolve());
  }

  private _disposed = false;
  private _kernels = new Map<string, number>();
  private _paths = new Map<string, number>();
  private _stateWaiters: (() => void)[] = [];
}

/**
 * A namespace for QueueService statics.
 */
export namespace QueueService {
  /**
   * Options of a QueueService.
   */
  export interface IOptions {
    /** The server's connection settings. */
    serverSettings: ServerConnection.ISettings;
    /** The websocket constructor (defaults to the server settings' one). */
    WebSocket?: QueueEventStream.IOptions['WebSocket'];
  }
}
