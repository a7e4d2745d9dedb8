import type { CodeCell } from '@jupyterlab/cells';
import type { IStdin, OutputArea } from '@jupyterlab/outputarea';
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import type { ITranslator } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { Panel, PanelLayout } from '@lumino/widgets';
import type { IEntry } from '../contract';

/**
 * The classes JupyterLab's output area gives the row of its stdin box.
 */
const STDIN_ROW_CLASSES = ['jp-OutputArea-child', 'jp-OutputArea-stdin-item'];

/**
 * JupyterLab's own stdin box in a cell's output area, answered through the
 * server queue instead of the page's kernel connection.
 *
 * It is the widget stock JupyterLab shows for an `input_request` (the output
 * area's `createStdin`, so password prompts are masked, Enter answers and the
 * line history works), placed where stock places it: a last row of the
 * output area. Enter sends the value with `answer` (`POST
 * /api/queue/<id>/input`); the server writes the echo (prompt and answer as
 * a `stdin` stream output) into the notebook, so none is added here.
 *
 * `update` is called with the cell's entry whenever it may have changed: the
 * box shows while the entry is `awaiting_input`, comes back if the output
 * area was cleared under it, and goes once the entry moves on.
 */
export class CellStdin implements IDisposable {
  constructor(options: CellStdin.IOptions) {
    this._cell = options.cell;
    this._answer = options.answer;
    this._translator = options.translator;
  }

  /**
   * The cell whose output area shows the box.
   */
  get cell(): CodeCell {
    return this._cell;
  }

  /**
   * Whether the box was disposed.
   */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * The stdin widget shown now, if any.
   */
  get stdin(): IStdin | null {
    return this._row && !this._row.isDisposed ? this._stdin : null;
  }

  /**
   * Show, keep or remove the box for the cell's latest entry.
   */
  update(entry: IEntry | undefined): void {
    if (this._disposed || this._cell.isDisposed) {
      return;
    }
    this._last = entry;
    const request =
      entry && entry.state === 'awaiting_input' ? entry.input_request : null;
    if (!entry || !request) {
      this._answeredEntry = null;
      this._remove();
      return;
    }
    if (this._answeredEntry === entry.id) {
      return; // answered; the store says running again once the answer is sent
    }
    const key = `${entry.id}\u0000${request.prompt}\u0000${request.password}`;
    if (this._key === key && this._row && !this._row.isDisposed) {
      return;
    }
    this._remove();
    this._key = key;
    this._show(entry.id, entry.kernel_id, request.prompt, request.password);
  }

  /**
   * Remove the box.
   */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._remove();
  }

  private _show(
    entryId: string,
    kernelId: string,
    prompt: string,
    password: boolean
  ): void {
    const area = this._cell.outputArea;
    const factory = area.contentFactory;
    const row = new Panel();
    STDIN_ROW_CLASSES.forEach(cls => row.addClass(cls));
    const outputPrompt = factory.createOutputPrompt();
    outputPrompt.addClass('jp-OutputArea-prompt');
    row.addWidget(outputPrompt);
    const future = {
      sendInputReply: (content: KernelMessage.IInputReplyMsg['content']) => {
        const value = content.status === 'ok' ? content.value : '';
        this._answeredEntry = entryId;
        // The row goes at once, as stock hides its box on Enter.
        this._remove();
        this._answer(entryId, value);
      }
    } as unknown as Kernel.IShellFuture;
    const stdin = factory.createStdin({
      parent_header: {
        date: '',
        msg_id: entryId,
        msg_type: 'input_request',
        session: kernelId,
        username: '',
        version: '5.3'
      },
      prompt,
      password,
      future,
      translator: this._translator
    });
    stdin.addClass('jp-OutputArea-output');
    row.addWidget(stdin);
    this._row = row;
    this._stdin = stdin;
    this._attach(row);
  }

  private _attach(row: Panel): void {
    const area: OutputArea = this._cell.outputArea;
    // Every output up to the request stays visible, as stock does.
    if (area.model.length >= area.maxNumberOutputs) {
      area.maxNumberOutputs = area.model.length;
    }
    (area.layout as PanelLayout).addWidget(row);
    if (!this._watching) {
      this._watching = true;
      // Clearing the outputs disposes every row of the area, ours too.
      area.outputLengthChanged.connect(this._onOutputs, this);
    }
  }

  private _onOutputs(): void {
    if (this._row && this._row.isDisposed) {
      // The outputs were cleared (the cell restarted): show the box again.
      this._key = null;
      this.update(this._last);
    }
  }

  private _remove(): void {
    const row = this._row;
    this._row = null;
    this._stdin = null;
    this._key = null;
    if (row && !row.isDisposed) {
      row.dispose();
    }
    if (this._watching) {
      this._watching = false;
      this._cell.outputArea.outputLengthChanged.disconnect(
        this._onOutputs,
        this
      );
    }
  }

  private _cell: CodeCell;
  private _answer: (entryId: string, value: string) => void;
  private _translator: ITranslator | undefined;
  private _disposed = false;
  private _row: Panel | null = null;
  private _stdin: IStdin | null = null;
  private _key: string | null = null;
  private _answeredEntry: string | null = null;
  private _last: IEntry | undefined;
  private _watching = false;
}

/**
 * A namespace for CellStdin statics.
 */
export namespace CellStdin {
  /**
   * Options of a CellStdin.
   */
  export interface IOptions {
    /** The code cell whose output area shows the box. */
    cell: CodeCell;
    /** Sends the value (`POST /api/queue/<id>/input`). */
    answer: (entryId: string, value: string) => void;
    /** JupyterLab's translator (the box's own texts). */
    translator?: ITranslator;
  }
}
