import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import type { QueueEvent } from '../contract';

/**
 * The connection state of the events websocket.
 */
export type StreamState = 'connecting' | 'open' | 'closed';

/**
 * The subset of the browser's WebSocket the stream uses (so tests can fake it).
 */
export interface IWebSocketLike {
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  close(code?: number, reason?: string): void;
}

/**
 * Builds a websocket; the browser's `WebSocket` constructor fits.
 */
export type WebSocketFactory = new (url: string) => IWebSocketLike;

/**
 * How long to wait before reconnecting after the `attempt`-th failure in a row:
 * doubling from `min`, capped at `max`.
 */
export function reconnectDelay(
  attempt: number,
  min = 500,
  max = 10000
): number {
  return Math.min(max, min * 2 ** Math.max(0, attempt));
}

/**
 * The `/api/queue/events` websocket, kept open for the page's lifetime.
 *
 * It remembers the last `seq` it saw and reconnects with `since=<seq>` after any
 * drop, so the server replays what was missed; a `gap` frame (the server no
 * longer has those events) is passed on so consumers resynchronise over REST.
 * A `seq` that goes backwards means the server restarted; it is reported as a
 * gap too.
 */
export class QueueEventStream implements IDisposable {
  constructor(options: QueueEventStream.IOptions) {
    this._url = options.url;
    this._factory = options.WebSocket;
    this._minDelay = options.minReconnectDelay ?? 500;
    this._maxDelay = options.maxReconnectDelay ?? 10000;
  }

  /**
   * Every event the server sent, in order.
   */
  get received(): ISignal<this, QueueEvent> {
    return this._received;
  }

  /**
   * Emitted when the connection opens, closes or starts connecting.
   */
  get stateChanged(): ISignal<this, StreamState> {
    return this._stateChanged;
  }

  /**
   * The connection state.
   */
  get state(): StreamState {
    return this._state;
  }

  /**
   * The last `seq` received, or null before the first event.
   */
  get lastSeq(): number | null {
    return this._lastSeq;
  }

  /**
   * Whether the stream was disposed.
   */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Open the connection (a no-op while one is open or opening).
   */
  connect(): void {
    if (this._disposed || this._socket) {
      return;
    }
    this._clearTimer();
    const url = this._withSince(this._url());
    this._setState('connecting');
    const socket = new this._factory(url);
    this._socket = socket;
    socket.onopen = () => {
      if (this._socket !== socket) {
        return;
      }
      this._failures = 0;
      this._setState('open');
    };
    socket.onmessage = (message: { data: unknown }) => {
      if (this._socket === socket) {
        this._handleFrame(message.data);
      }
    };
    socket.onerror = () => {
      // A close event always follows; reconnection is handled there.
    };
    socket.onclose = () => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      this._setState('closed');
      this._scheduleReconnect();
    };
  }

  /**
   * Drop the connection now and reconnect at once (for example when the
   * browser says it is back online).
   */
  reconnectNow(): void {
    if (this._disposed) {
      return;
    }
    this._failures = 0;
    const socket = this._socket;
    if (socket) {
      this._socket = null;
      this._detach(socket);
      socket.close();
    }
    this._setState('closed');
    this.connect();
  }

  /**
   * Close the connection for good.
   */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._clearTimer();
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      this._detach(socket);
      socket.close();
    }
    this._setState('closed');
    Signal.clearData(this);
  }

  private _handleFrame(data: unknown): void {
    if (typeof data !== 'string') {
      return;
    }
    let event: QueueEvent;
    try {
      event = JSON.parse(data) as QueueEvent;
    } catch {
      console.warn('jupyter-canvas: ignored a malformed event frame', data);
      return;
    }
    if (!event || typeof event !== 'object' || !('type' in event)) {
      return;
    }
    if ('seq' in event && typeof event.seq === 'number') {
      if (this._lastSeq !== null && event.seq <= this._lastSeq) {
        // Numbers only grow on one server, so the server restarted: what
        // happened before is unknown; consumers resync as after a gap.
        this._received.emit({ type: 'gap', oldest: event.seq });
      }
      this._lastSeq = event.seq;
    } else if (event.type === 'gap' && typeof event.oldest === 'number') {
      // Continue from what the server still has; consumers resync the rest.
      this._lastSeq = Math.max(this._lastSeq ?? 0, event.oldest - 1);
    }
    this._received.emit(event);
  }

  private _withSince(url: string): string {
    if (this._lastSeq === null) {
      return url;
    }
    const separator = url.includes('?') ? '&' : '?';
    return `${url}${separator}since=${this._lastSeq}`;
  }

  private _scheduleReconnect(): void {
    if (this._disposed) {
      return;
    }
    const delay = reconnectDelay(
      this._failures,
      this._minDelay,
      this._maxDelay
    );
    this._failures += 1;
    this._clearTimer();
    this._timer = setTimeout(() => {
      this._timer = null;
      this.connect();
    }, delay);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _detach(socket: IWebSocketLike): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
  }

  private _setState(state: StreamState): void {
    if (this._state !== state) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _url: () => string;
  private _factory: WebSocketFactory;
  private _minDelay: number;
  private _maxDelay: number;
  private _socket: IWebSocketLike | null = null;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _failures = 0;
  private _lastSeq: number | null = null;
  private _state: StreamState = 'closed';
  private _disposed = false;
  private _received = new Signal<this, QueueEvent>(this);
  private _stateChanged = new Signal<this, StreamState>(this);
}

/**
 * A namespace for QueueEventStream statics.
 */
export namespace QueueEventStream {
  /**
   * Options of a QueueEventStream.
   */
  export interface IOptions {
    /** The websocket URL without `since` (called at every connection). */
    url: () => string;
    /** The websocket constructor. */
    WebSocket: WebSocketFactory;
    /** First reconnection delay in ms (doubles up to the maximum). */
    minReconnectDelay?: number;
    /** Longest reconnection delay in ms. */
    maxReconnectDelay?: number;
  }
}
