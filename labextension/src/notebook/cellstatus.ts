import type { Cell } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import type { IEntry } from '../contract';
import { IQueueBadge, queueBadge } from '../queue/labels';
import type { QueueService } from '../queue/service';
import { english, ITrans } from '../translation';

/**
 * The class of the badge node a cell carries while it has queue state.
 */
export const BADGE_CLASS = 'jp-CanvasQueueBadge';

const STATE_CLASSES = [
  'jp-canvas-queued',
  'jp-canvas-running',
  'jp-canvas-awaiting_input',
  'jp-canvas-cancelled'
];

/**
 * Show on a node the badge of an entry (or remove it when there is none).
 *
 * `host` gets a `jp-canvas-<state>` class; the badge is the host's child with
 * class `jp-CanvasQueueBadge`. While the entry waits on `input()` the badge
 * holds a field whose value is sent with `answer`.
 */
export function renderQueueBadge(
  host: HTMLElement,
  badge: IQueueBadge | null,
  entry: IEntry | undefined,
  answer: (entryId: string, value: string) => void,
  trans: ITrans = english
): void {
  let node = Array.from(host.children).find(child =>
    child.classList.contains(BADGE_CLASS)
  ) as HTMLElement | undefined;
  for (const cls of STATE_CLASSES) {
    host.classList.toggle(
      cls,
      badge !== null && cls === `jp-canvas-${badge.state}`
    );
  }
  if (!badge || !entry) {
    node?.remove();
    return;
  }
  if (!node) {
    node = document.createElement('div');
    node.className = BADGE_CLASS;
    host.appendChild(node);
  }
  node.dataset.state = badge.state;
  node.title = badge.title;
  let label = node.querySelector('.jp-CanvasQueueBadge-label');
  if (!label) {
    label = document.createElement('span');
    label.className = 'jp-CanvasQueueBadge-label';
    node.appendChild(label);
  }
  label.textContent = badge.text;
  let form = node.querySelector('form');
  if (badge.state !== 'awaiting_input') {
    form?.remove();
    return;
  }
  if (form && form.dataset.entry === entry.id) {
    return; // keep what the user is typing
  }
  form?.remove();
  form = document.createElement('form');
  form.dataset.entry = entry.id;
  const input = document.createElement('input');
  input.className = 'jp-CanvasQueueBadge-input';
  input.type = entry.input_request?.password ? 'password' : 'text';
  input.placeholder = entry.input_request?.prompt || trans.__('input()');
  input.setAttribute('aria-label', input.placeholder);
  form.appendChild(input);
  form.addEventListener('submit', event => {
    event.preventDefault();
    answer(entry.id, input.value);
    input.disabled = true;
  });
  node.appendChild(form);
}

/**
 * Shows the queue state of a notebook's cells: queued (with the place in the
 * kernel's queue), running, waiting for input, or cancelled and why.
 */
export class CellQueueIndicator implements IDisposable {
  constructor(
    panel: NotebookPanel,
    queue: QueueService,
    trans: ITrans = english
  ) {
    this._panel = panel;
    this._queue = queue;
    this._trans = trans;
    queue.store.changed.connect(this._scheduleRefresh, this);
    panel.context.pathChanged.connect(this._trackPath, this);
    panel.sessionContext.kernelChanged.connect(this._trackKernel, this);
    panel.content.modelChanged.connect(this._watchCells, this);
    this._watchCells();
    void panel.context.ready.then(() => {
      this._trackPath();
      this._trackKernel();
    });
    void panel.sessionContext.ready.then(() => this._trackKernel());
  }

  /**
   * Whether the indicator was disposed.
   */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Stop following the notebook.
   */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._pathTracker?.dispose();
    this._kernelTracker?.dispose();
    this._queue.store.changed.disconnect(this._scheduleRefresh, this);
    if (this._frame !== null) {
      cancelAnimationFrame(this._frame);
    }
  }

  /**
   * Redraw every cell's badge now.
   */
  refresh(): void {
    this._frame = null;
    if (this._disposed || this._panel.isDisposed) {
      return;
    }
    const store = this._queue.store;
    const path = this._panel.context.path;
    for (const cell of this._panel.content.widgets as readonly Cell[]) {
      if (cell.model.type !== 'code') {
        continue;
      }
      const entry = store.cellEntry(path, cell.model.id);
      const badge = queueBadge(
        entry,
        entry ? store.position(entry.id) : null,
        this._trans
      );
      renderQueueBadge(
        cell.node,
        badge,
        entry,
        (id, value) => void this._queue.answerInput(id, value),
        this._trans
      );
    }
  }

  private _scheduleRefresh(): void {
    if (this._frame === null && !this._disposed) {
      this._frame = requestAnimationFrame(() => this.refresh());
    }
  }

  private _watchCells(): void {
    const model = this._panel.content.model;
    if (model) {
      model.cells.changed.connect(this._scheduleRefresh, this);
    }
    this._scheduleRefresh();
  }

  private _trackPath(): void {
    this._pathTracker?.dispose();
    this._pathTracker = this._queue.trackPath(this._panel.context.path);
    this._scheduleRefresh();
  }

  private _trackKernel(): void {
    const kernel = this._panel.sessionContext.session?.kernel;
    const id = kernel?.id;
    if (id === this._kernelId) {
      return;
    }
    this._kernelId = id;
    this._kernelTracker?.dispose();
    this._kernelTracker = id ? this._queue.trackKernel(id) : null;
  }

  private _panel: NotebookPanel;
  private _queue: QueueService;
  private _trans: ITrans;
  private _disposed = false;
  private _frame: number | null = null;
  private _kernelId: string | undefined;
  private _pathTracker: IDisposable | null = null;
  private _kernelTracker: IDisposable | null = null;
}
