import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import {
  IEntry,
  IKernelStatus,
  isTerminal,
  KernelLifeStatus,
  EntryState,
  QueueEvent
} from '../contract';

/**
 * What changed in the store: the kernel whose queue moved and every entry whose
 * state or place in the queue may look different now.
 */
export interface IQueueChange {
  kernelId: string;
  entries: IEntry[];
}

/**
 * How far an entry got: an event may never move an entry back (listings and
 * events can arrive in either order).
 */
function progress(state: EntryState): number {
  switch (state) {
    case 'queued':
      return 0;
    case 'running':
    case 'awaiting_input':
      return 1;
    default:
      return 2;
  }
}

/**
 * A kernel death the page saw: why, as what status, and when.
 */
export interface IKernelCrash {
  reason: string;
  status: KernelLifeStatus;
  at: Date;
}

/**
 * Statuses of a kernel whose process died (and maybe restarts).
 */
const CRASHED: ReadonlySet<KernelLifeStatus> = new Set<KernelLifeStatus>([
  'dead',
  'autorestarting'
]);

function cellKey(path: string, cellId: string): string {
  return `${path}\u0000${cellId}`;
}

function timeOf(stamp: string | null | undefined): number {
  const value = stamp ? Date.parse(stamp) : NaN;
  return Number.isNaN(value) ? 0 : value;
}

/**
 * The page's picture of the server's queues, fed by events and REST answers.
 *
 * It keeps every live entry, a bounded number of finished ones, the order of
 * each kernel's queued entries (so a cell can show its place as the entries
 * ahead of it start) and the last status of each kernel.
 */
export class QueueStore implements IDisposable {
  constructor(options: QueueStore.IOptions = {}) {
    this._maxFinished = options.maxFinished ?? 2000;
    this._now = options.now ?? Date.now;
  }

  /**
   * Emitted when entries changed state or place.
   */
  get changed(): ISignal<this, IQueueChange> {
    return this._changed;
  }

  /**
   * Emitted when a kernel's status changed.
   */
  get kernelChanged(): ISignal<this, IKernelStatus> {
    return this._kernelChanged;
  }

  /**
   * Emitted when events were lost (a `gap`): listeners refetch over REST.
   */
  get resyncNeeded(): ISignal<this, void> {
    return this._resyncNeeded;
  }

  /**
   * Whether the store was disposed.
   */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * A mark of what the store knows now. Read it before sending a request and
   * pass it with the answer (`applyEntries(answer, asOf)`): what the store
   * learnt after the mark (from events, mostly) wins over the answer, which
   * may be older, unless the answer is further along.
   */
  get clock(): number {
    return this._clock;
  }

  /**
   * Take one frame of the events websocket into account.
   */
  applyEvent(event: QueueEvent): void {
    switch (event.type) {
      case 'entry':
        this.applyEntries([event.entry]);
        break;
      case 'kernel':
        this.applyKernelStatus(event.status);
        break;
      case 'gap':
        this._resyncNeeded.emit();
        break;
      default:
        // Outputs reach the page through the shared notebook document.
        break;
    }
  }

  /**
   * Merge entries (from events or REST answers), never moving one backwards.
   *
   * `asOf` is the `clock` read when the REST request was sent: an entry the
   * store updated since keeps its newer state unless the answer is further
   * along (a `running` answer never hides the `awaiting_input` an event
   * brought while the request was in flight).
   */
  applyEntries(entries: readonly IEntry[], asOf?: number): void {
    const touched = new Map<string, Set<string>>();
    for (const entry of entries) {
      if (this._merge(entry, asOf)) {
        let ids = touched.get(entry.kernel_id);
        if (!ids) {
          ids = new Set();
          touched.set(entry.kernel_id, ids);
        }
        ids.add(entry.id);
      }
    }
    this._emitChanges(touched);
    this._prune();
  }

  /**
   * Replace what is known of one kernel with a full listing of it
   * (`GET /api/queue?kernel_id=`): entries the server no longer lists are
   * forgotten and the queue order is the listing's.
   */
  applyKernelListing(
    kernelId: string,
    entries: readonly IEntry[],
    asOf?: number
  ): void {
    const listed = new Set(entries.map(e => e.id));
    const touched = new Set<string>();
    for (const [id, known] of this._entries) {
      if (
        known.kernel_id === kernelId &&
        !listed.has(id) &&
        !this._newerThan(id, asOf)
      ) {
        this._forget(id);
        touched.add(id);
      }
    }
    for (const entry of entries) {
      if (entry.kernel_id === kernelId && this._merge(entry, asOf)) {
        touched.add(entry.id);
      }
    }
    // The listing gives the run order; keep it for the entries still queued.
    const order = entries
      .filter(e => e.kernel_id === kernelId)
      .map(e => e.id)
      .filter(id => this._entries.get(id)?.state === 'queued');
    const before = this._queues.get(kernelId) ?? [];
    this._queues.set(kernelId, order);
    before.forEach(id => touched.add(id));
    this._emitChanges(new Map([[kernelId, touched]]));
    this._prune();
  }

  /**
   * Record a kernel's status (`asOf`: as for `applyEntries`, a REST answer
   * never replaces a status an event brought after the request was sent).
   */
  applyKernelStatus(status: IKernelStatus, asOf?: number): void {
    const key = `kernel:${status.kernel_id}`;
    if (this._newerThan(key, asOf)) {
      return;
    }
    const known = this._kernels.get(status.kernel_id);
    if (known && JSON.stringify(known) === JSON.stringify(status)) {
      return;
    }
    this._kernels.set(status.kernel_id, status);
    this._touched.set(key, ++this._clock);
    if (status.reason && CRASHED.has(status.status)) {
      const last = this._crashes.get(status.kernel_id);
      if (
        !last ||
        last.reason !== status.reason ||
        known?.status !== status.status
      ) {
        this._crashes.set(status.kernel_id, {
          reason: status.reason,
          status: status.status,
          at: new Date(this._now())
        });
      }
    }
    this._kernelChanged.emit(status);
  }

  /**
   * The last time this page saw the kernel die (dead, or dying and being
   * restarted), with the reason: kept after the kernel is back.
   */
  lastCrash(kernelId: string): IKernelCrash | undefined {
    return this._crashes.get(kernelId);
  }

  /**
   * The user answered the `input()` an entry waits on: it runs again (until
   * the server says otherwise), so the next `input()` of the same entry is a
   * new request.
   */
  inputAnswered(entryId: string): void {
    const known = this._entries.get(entryId);
    if (!known || known.state !== 'awaiting_input') {
      return;
    }
    this.applyEntries([{ ...known, state: 'running', input_request: null }]);
  }

  /**
   * The entry with this id, if known.
   */
  entry(id: string): IEntry | undefined {
    return this._entries.get(id);
  }

  /**
   * The 0-based place of a queued entry among its kernel's queued entries.
   */
  position(id: string): number | null {
    const entry = this._entries.get(id);
    if (!entry || entry.state !== 'queued') {
      return null;
    }
    const index = (this._queues.get(entry.kernel_id) ?? []).indexOf(id);
    return index < 0 ? entry.position : index;
  }

  /**
   * The latest entry queued for a notebook cell.
   */
  cellEntry(path: string, cellId: string): IEntry | undefined {
    const id = this._cells.get(cellKey(path, cellId));
    return id === undefined ? undefined : this._entries.get(id);
  }

  /**
   * Entries of a notebook that are queued, running or awaiting input.
   */
  activeEntries(path: string): IEntry[] {
    return [...this._entries.values()].filter(
      e => e.path === path && !isTerminal(e.state)
    );
  }

  /**
   * The entry a kernel runs now (running or awaiting input), if any.
   */
  runningEntry(kernelId: string): IEntry | undefined {
    for (const entry of this._entries.values()) {
      if (entry.kernel_id === kernelId && progress(entry.state) === 1) {
        return entry;
      }
    }
    return undefined;
  }

  /**
   * The last status of a kernel, if known.
   */
  kernelStatus(kernelId: string): IKernelStatus | undefined {
    return this._kernels.get(kernelId);
  }

  /**
   * Resolve with the entry once it is terminal (at once if it is already).
   * Rejects if the entry is forgotten (the server no longer knows it).
   */
  whenFinished(id: string): Promise<IEntry> {
    const entry = this._entries.get(id);
    if (entry && isTerminal(entry.state)) {
      return Promise.resolve(entry);
    }
    return new Promise<IEntry>((resolve, reject) => {
      const waiters = this._waiters.get(id) ?? [];
      waiters.push({ resolve, reject });
      this._waiters.set(id, waiters);
    });
  }

  /**
   * Forget an entry the server no longer knows (its waiters are rejected).
   */
  forget(id: string): void {
    const entry = this._entries.get(id);
    this._forget(id);
    if (entry) {
      this._emitChanges(new Map([[entry.kernel_id, new Set<string>()]]));
    }
  }

  /**
   * Forget everything and reject every waiter.
   */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    for (const [id, waiters] of this._waiters) {
      waiters.forEach(w => w.reject(new Error(`entry ${id}: store disposed`)));
    }
    this._waiters.clear();
    this._entries.clear();
    Signal.clearData(this);
  }

  /**
   * Merge one entry; return whether anything visible changed.
   */
  private _merge(entry: IEntry, asOf?: number): boolean {
    const known = this._entries.get(entry.id);
    if (known) {
      if (progress(known.state) > progress(entry.state)) {
        return false; // a stale answer
      }
      if (
        this._newerThan(entry.id, asOf) &&
        progress(known.state) === progress(entry.state)
      ) {
        return false; // an answer older than what events said since
      }
      if (isTerminal(known.state)) {
        return false; // terminal is final
      }
    }
    const merged: IEntry = known ? { ...known, ...entry } : { ...entry };
    delete merged.outputs; // outputs live in the notebook, not here
    this._entries.set(entry.id, merged);
    this._touched.set(entry.id, ++this._clock);
    this._placeInQueue(merged);
    if (merged.path !== null && merged.cell_id !== null) {
      const key = cellKey(merged.path, merged.cell_id);
      const current = this._cells.get(key);
      const currentEntry =
        current === undefined ? undefined : this._entries.get(current);
      if (
        !currentEntry ||
        currentEntry.id === merged.id ||
        timeOf(merged.queued_at) >= timeOf(currentEntry.queued_at)
      ) {
        this._cells.set(key, merged.id);
      }
    }
    if (isTerminal(merged.state)) {
      this._finished.push(merged.id);
      const waiters = this._waiters.get(merged.id);
      if (waiters) {
        this._waiters.delete(merged.id);
        waiters.forEach(w => w.resolve(merged));
      }
    }
    return (
      !known ||
      known.state !== merged.state ||
      known.position !== merged.position ||
      known.reason !== merged.reason ||
      known.execution_count !== merged.execution_count ||
      JSON.stringify(known.input_request ?? null) !==
        JSON.stringify(merged.input_request ?? null)
    );
  }

  private _placeInQueue(entry: IEntry): void {
    const queue = this._queues.get(entry.kernel_id) ?? [];
    const index = queue.indexOf(entry.id);
    if (entry.state === 'queued') {
      if (index < 0) {
        // The server's position at the time of the answer is authoritative.
        const at = Math.min(entry.position ?? queue.length, queue.length);
        queue.splice(at, 0, entry.id);
      }
    } else if (index >= 0) {
      queue.splice(index, 1);
    }
    this._queues.set(entry.kernel_id, queue);
  }

  /**
   * Whether the store updated this key after the `asOf` mark.
   */
  private _newerThan(key: string, asOf: number | undefined): boolean {
    return asOf !== undefined && (this._touched.get(key) ?? 0) > asOf;
  }

  private _forget(id: string): void {
    const entry = this._entries.get(id);
    if (!entry) {
      return;
    }
    this._entries.delete(id);
    this._touched.delete(id);
    const queue = this._queues.get(entry.kernel_id);
    if (queue) {
      const index = queue.indexOf(id);
      if (index >= 0) {
        queue.splice(index, 1);
      }
    }
    if (entry.path !== null && entry.cell_id !== null) {
      const key = cellKey(entry.path, entry.cell_id);
      if (this._cells.get(key) === id) {
        this._cells.delete(key);
      }
    }
    const waiters = this._waiters.get(id);
    if (waiters) {
      this._waiters.delete(id);
      waiters.forEach(w =>
        w.reject(new Error(`entry ${id} is no longer known to the server`))
      );
    }
  }

  /**
   * Keep at most `maxFinished` finished entries (oldest finished go first).
   */
  private _prune(): void {
    while (this._finished.length > this._maxFinished) {
      const id = this._finished.shift()!;
      const entry = this._entries.get(id);
      if (entry && isTerminal(entry.state)) {
        this._forget(id);
      }
    }
  }

  private _emitChanges(touched: Map<string, Set<string>>): void {
    for (const [kernelId, ids] of touched) {
      // Every queued entry of the kernel may have moved up.
      for (const id of this._queues.get(kernelId) ?? []) {
        ids.add(id);
      }
      const entries = [...ids]
        .map(id => this._entries.get(id))
        .filter((e): e is IEntry => e !== undefined)
        .map(e => ({ ...e, position: this.position(e.id) }));
      this._changed.emit({ kernelId, entries });
    }
  }

  private _maxFinished: number;
  private _now: () => number;
  private _clock = 0;
  private _touched = new Map<string, number>();
  private _crashes = new Map<string, IKernelCrash>();
  private _disposed = false;
  private _entries = new Map<string, IEntry>();
  private _finished: string[] = [];
  private _queues = new Map<string, string[]>();
  private _cells = new Map<string, string>();
  private _kernels = new Map<string, IKernelStatus>();
  private _waiters = new Map<
    string,
    { resolve: (e: IEntry) => void; reject: (e: Error) => void }[]
  >();
  private _changed = new Signal<this, IQueueChange>(this);
  private _kernelChanged = new Signal<this, IKernelStatus>(this);
  private _resyncNeeded = new Signal<this, void>(this);
}

/**
 * A namespace for QueueStore statics.
 */
export namespace QueueStore {
  /**
   * Options of a QueueStore.
   */
  export interface IOptions {
    /** How many finished entries to remember (oldest are forgotten first). */
    maxFinished?: number;
    /** The clock of crash times (tests pass their own). */
    now?: () => number;
  }
}
