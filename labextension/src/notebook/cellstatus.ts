import type { Cell, CodeCell } from '@jupyterlab/cells';
import { Notification } from '@jupyterlab/apputils';
import type { ITranslator } from '@jupyterlab/translation';
import type { NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import type { IEntry } from '../contract';
import { IQueueBadge, queueBadge } from '../queue/labels';
import type { IQueueChange } from '../queue/queuestore';
import type { QueueService } from '../queue/service';
import { english, ITrans } from '../translation';
import { CellStdin } from './stdin';

/**
 * The class of the badge node a cell carries while it has queue state.
 */
export const BADGE_CLASS = 'jp-CanvasQueueBadge';

const STATE_CLASSES = [
  'jp-canvas-queued',
  'jp-canvas-running',
  'jp-canvas-awaiting_input',
  'jp-canvas-cancelled',
  'jp-canvas-killed'
];

/**
 * Options of `renderQueueBadge`.
 */
export interface IBadgeOptions {
  /** Whether a field answers `input()` in the badge (default true). */
  inputField?: boolean;
  /** Cancels one entry; given, live entries get a cancel button. */
  cancel?: (entryId: string) => void;
}

const CANCEL_CLASS = 'jp-CanvasQueueBadge-cancel';

function renderCancelButton(
  node: HTMLElement,
  badge: IQueueBadge,
  entry: IEntry,
  cancel: ((entryId: string) => void) | undefined,
  trans: ITrans
): void {
  let button = node.querySelector<HTMLButtonElement>(`.${CANCEL_CLASS}`);
  const live =
    badge.state === 'queued' ||
    badge.state === 'running' ||
    badge.state === 'awaiting_input';
  if (!cancel || !live) {
    button?.remove();
    return;
  }
  if (!button) {
    button = document.createElement('button');
    button.type = 'button';
    button.className = CANCEL_CLASS; // its ✕ is drawn by CSS: the text stays the state's
    button.addEventListener('click', event => {
      event.preventDefault();
      event.stopPropagation();
      const id = button?.dataset.entry;
      if (id) {
        cancel(id);
      }
    });
    node.appendChild(button);
  }
  button.dataset.entry = entry.id;
  const title =
    badge.state === 'queued'
      ? trans.__('Cancel this cell (it leaves the queue)')
      : trans.__('Cancel this cell (its kernel is interrupted)');
  button.title = title;
  button.setAttribute('aria-label', title);
}

/**
 * Show on a node the badge of an entry (or remove it when there is none).
 *
 * `host` gets a `jp-canvas-<state>` class; the badge is the host's child with
 * class `jp-CanvasQueueBadge`. While the entry waits on `input()` the badge
 * holds a field whose value is sent with `answer`, unless
 * `options.inputField` is false (notebook cells show JupyterLab's own stdin
 * box instead). With `options.cancel`, a queued or running entry's badge has
 * a button that cancels that entry only.
 */
export function renderQueueBadge(
  host: HTMLElement,
  badge: IQueueBadge | null,
  entry: IEntry | undefined,
  answer: (entryId: string, value: string) => void,
  trans: ITrans = english,
  options: IBadgeOptions = {}
): void {
  const inputField = options.inputField ?? true;
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
  renderCancelButton(node, badge, entry, options.cancel, trans);
  let form = node.querySelector('form');
  if (badge.state !== 'awaiting_input' || !inputField) {
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
 * kernel's queue), running, waiting for input (with JupyterLab's stdin box in
 * the output area), cancelled and why, or killed with its kernel.
 *
 * A change in the store redraws the cells it concerns at once (so a stdin box
 * shows as soon as its event arrives, even in a background tab); a change of
 * the notebook's cells redraws them all on the next frame.
 */
export class CellQueueIndicator implements IDisposable {
  constructor(
    panel: NotebookPanel,
    queue: QueueService,
    trans: ITrans = english,
    translator?: ITranslator
  ) {
    this._panel = panel;
    this._queue = queue;
    this._trans = trans;
    this._translator = translator;
    queue.store.changed.connect(this._onStoreChanged, this);
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
    this._queue.store.changed.disconnect(this._onStoreChanged, this);
    if (this._frame !== null) {
      cancelAnimationFrame(this._frame);
    }
    this._stdins.forEach(stdin => stdin.dispose());
    this._stdins.clear();
  }

  /**
   * Redraw every cell's badge now.
   */
  refresh(): void {
    this._frame = null;
    if (this._disposed || this._panel.isDisposed) {
      return;
    }
    const seen = new Set<string>();
    for (const cell of this._panel.content.widgets as readonly Cell[]) {
      if (cell.model.type === 'code') {
        seen.add(cell.model.id);
        this._render(cell as CodeCell);
      }
    }
    // Cells that were deleted take their stdin box with them.
    for (const [id, stdin] of this._stdins) {
      if (!seen.has(id)) {
        stdin.dispose();
        this._stdins.delete(id);
      }
    }
  }

  private _render(cell: CodeCell): void {
    const store = this._queue.store;
    const entry = store.cellEntry(this._panel.context.path, cell.model.id);
    const badge = queueBadge(
      entry,
      entry ? store.position(entry.id) : null,
      this._trans
    );
    renderQueueBadge(cell.node, badge, entry, () => undefined, this._trans, {
      inputField: false,
      cancel: id => void this._cancel(id)
    });
    const known = this._stdins.get(cell.model.id);
    if (known && (known.isDisposed || known.cell !== cell)) {
      known.dispose(); // the cell's widget was replaced
      this._stdins.delete(cell.model.id);
    }
    if (this._stdins.has(cell.model.id) || entry?.state === 'awaiting_input') {
      this._stdinOf(cell).update(entry);
    }
  }

  /**
   * The stdin box of a cell (created on first need).
   */
  private _stdinOf(cell: CodeCell): CellStdin {
    let stdin = this._stdins.get(cell.model.id);
    if (!stdin) {
      stdin = new CellStdin({
        cell,
        answer: (id, value) => void this._answer(id, value),
        translator: this._translator
      });
      this._stdins.set(cell.model.id, stdin);
    }
    return stdin;
  }

  private async _answer(entryId: string, value: string): Promise<void> {
    try {
      await this._queue.answerInput(entryId, value);
    } catch (reason) {
      const message = reason instanceof Error ? reason.message : `${reason}`;
      Notification.error(
        this._trans.__('The input was not accepted: %1', message),
        { autoClose: 8000 }
      );
      // What the server says now (the box comes back if it still waits).
      await this._queue.syncPath(this._panel.context.path);
    }
  }

  private async _cancel(entryId: string): Promise<void> {
    try {
      await this._queue.cancel(entryId);
    } catch (reason) {
      const message = reason instanceof Error ? reason.message : `${reason}`;
      Notification.error(this._trans.__('Could not cancel: %1', message), {
        autoClose: 8000
      });
    }
  }

  private _onStoreChanged(_: unknown, change: IQueueChange): void {
    if (this._disposed || this._panel.isDisposed) {
      return;
    }
    const path = this._panel.context.path;
    const cellIds = new Set(
      change.entries
        .filter(e => e.path === path && e.cell_id !== null)
        .map(e => e.cell_id as string)
    );
    if (cellIds.size === 0) {
      return;
    }
    for (const cell of this._panel.content.widgets as readonly Cell[]) {
      if (cell.model.type === 'code' && cellIds.has(cell.model.id)) {
        this._render(cell as CodeCell);
      }
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
  private _translator: ITranslator | undefined;
  private _disposed = false;
  private _frame: number | null = null;
  private _kernelId: string | undefined;
  private _pathTracker: IDisposable | null = null;
  private _kernelTracker: IDisposable | null = null;
  private _stdins = new Map<string, CellStdin>();
}
