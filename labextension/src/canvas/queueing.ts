import { Notification } from '@jupyterlab/apputils';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type { INotebookModel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import type { IQueueRequest } from '../contract';
import { renderQueueBadge } from '../notebook/cellstatus';
import { queueBadge } from '../queue/labels';
import { SerialChain } from '../queue/serial';
import type { QueueService } from '../queue/service';
import type { ITrans } from '../translation';
import type { CanvasCard } from './card';

/**
 * The canvas's link to the server queue: it queues cards (in order), follows
 * the notebook's entries and its kernel, and shows each code card's queue badge.
 */
export class CanvasQueueing implements IDisposable {
  constructor(options: CanvasQueueing.IOptions) {
    this._queue = options.queue;
    this._context = options.context;
    this._trans = options.trans;
    this._cards = options.cards;
    this._queue.store.changed.connect(this.scheduleBadges, this);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Follow the notebook's entries and its kernel (once its model is ready).
   */
  start(): void {
    this._context.sessionContext.kernelChanged.connect(this._trackKernel, this);
    this._trackers.push(this._queue.trackPath(this._context.path));
    this._trackKernel();
    this.scheduleBadges();
  }

  /**
   * Queue cells on the notebook's kernel; requests reach the server in order.
   */
  submit(request: IQueueRequest): void {
    const path = this._context.path;
    void this._runChain.run(async () => {
      const kernelId = this._context.sessionContext.session?.kernel?.id;
      try {
        const entries = await this._queue.client.queue({
          path,
          ...(kernelId ? { kernel_id: kernelId } : {}),
          ...request
        });
        this._queue.store.applyEntries(entries);
      } catch (reason) {
        const message = reason instanceof Error ? reason.message : `${reason}`;
        Notification.error(this._trans.__('Nothing was queued: %1', message), {
          autoClose: 8000
        });
      }
    });
  }

  /**
   * Redraw the badges at the next frame.
   */
  scheduleBadges(): void {
    if (this._frame === null && !this._disposed) {
      this._frame = requestAnimationFrame(() => {
        this._frame = null;
        this._updateBadges();
      });
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (this._frame !== null) {
      cancelAnimationFrame(this._frame);
    }
    this._trackers.forEach(t => t.dispose());
    this._kernelTracker?.dispose();
    this._queue.store.changed.disconnect(this.scheduleBadges, this);
    this._context.sessionContext.kernelChanged.disconnect(
      this._trackKernel,
      this
    );
  }

  private _updateBadges(): void {
    const store = this._queue.store;
    const path = this._context.path;
    for (const card of this._cards()) {
      if (card.model.type !== 'code') {
        continue;
      }
      const entry = store.cellEntry(path, card.cellId);
      const badge = queueBadge(
        entry,
        entry ? store.position(entry.id) : null,
        this._trans
      );
      renderQueueBadge(
        card.header,
        badge,
        entry,
        (id, value) => void this._queue.answerInput(id, value),
        this._trans
      );
      card.toggleClass('jp-mod-queueActive', badge !== null);
    }
  }

  private _trackKernel(): void {
    const id = this._context.sessionContext.session?.kernel?.id;
    if (id === this._kernelId) {
      return;
    }
    this._kernelId = id;
    this._kernelTracker?.dispose();
    this._kernelTracker = id ? this._queue.trackKernel(id) : null;
  }

  private _queue: QueueService;
  private _context: DocumentRegistry.IContext<INotebookModel>;
  private _trans: ITrans;
  private _cards: () => Iterable<CanvasCard>;
  private _runChain = new SerialChain();
  private _trackers: IDisposable[] = [];
  private _kernelId: string | undefined;
  private _kernelTracker: IDisposable | null = null;
  private _frame: number | null = null;
  private _disposed = false;
}

/**
 * A namespace for CanvasQueueing statics.
 */
export namespace CanvasQueueing {
  /**
   * Options of a CanvasQueueing.
   */
  export interface IOptions {
    queue: QueueService;
    context: DocumentRegistry.IContext<INotebookModel>;
    trans: ITrans;
    /** The cards shown. */
    cards: () => Iterable<CanvasCard>;
  }
}
