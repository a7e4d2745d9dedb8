import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { ICodeCellModel } from '@jupyterlab/cells';
import {
  INotebookCellExecutor,
  INotebookModel,
  KernelError,
  runCell as runCellInBrowser
} from '@jupyterlab/notebook';
import { nullTranslator } from '@jupyterlab/translation';
import type { IEntry } from '../contract';
import { SerialChain } from '../queue/serial';
import type { QueueService } from '../queue/service';
import { english, ITrans } from '../translation';

/**
 * The notebook cell executor that queues code cells on the server.
 *
 * A code cell becomes `POST /api/queue` with the notebook's path, the cell id,
 * the source the user sees and the kernel of the notebook's session. The
 * server runs it and writes its outputs into the shared notebook document, so
 * they reach every open view (and survive closing the page). The promise of
 * `runCell` settles when the entry ends, like JupyterLab's own executor.
 *
 * Markdown and raw cells, and notebooks that are not shared documents (no
 * real-time collaboration), run as JupyterLab runs them.
 */
export class ServerCellExecutor implements INotebookCellExecutor {
  constructor(options: ServerCellExecutor.IOptions) {
    this._queue = options.queue;
    this._trans = options.trans ?? english;
  }

  /**
   * Run one cell.
   */
  async runCell(
    options: INotebookCellExecutor.IRunCellOptions
  ): Promise<boolean> {
    const { cell, notebook, sessionContext, onCellExecuted } = options;
    if (
      cell.model.type !== 'code' ||
      !sessionContext ||
      !notebook.collaborative
    ) {
      return runCellInBrowser(options);
    }
    let entry: IEntry | null;
    try {
      // One request at a time per notebook: the server queues in arrival order.
      entry = await this._chain(notebook).run(() => this._submit(options));
    } catch (error) {
      onCellExecuted({ cell, success: false });
      const message = error instanceof Error ? error.message : `${error}`;
      Notification.error(
        this._trans.__('The cell was not queued: %1', message),
        {
          autoClose: 8000
        }
      );
      return false;
    }
    if (entry === null) {
      return true; // nothing to run (no kernel chosen), as JupyterLab does
    }
    let finished: IEntry;
    try {
      finished = await this._queue.waitFinished(entry.id);
    } catch {
      onCellExecuted({ cell, success: false });
      return false;
    }
    const success = finished.state === 'done';
    const error =
      finished.state === 'error' && finished.error
        ? new KernelError({
            status: 'error',
            execution_count: finished.execution_count,
            ename: finished.error.ename,
            evalue: finished.error.evalue,
            traceback: finished.error.traceback
          })
        : null;
    onCellExecuted({ cell, success, error });
    return success;
  }

  /**
   * Make sure the notebook has a kernel, then queue the cell; null when there
   * is nothing to run.
   */
  private async _submit(
    options: INotebookCellExecutor.IRunCellOptions
  ): Promise<IEntry | null> {
    const { cell, sessionContext, sessionDialogs, onCellExecutionScheduled } =
      options;
    const trans = (options.translator ?? nullTranslator).load('jupyterlab');
    if (!sessionContext || cell.isDisposed) {
      return null;
    }
    // A cell run while the notebook's session is still being set up (the page
    // just opened) waits for its kernel instead of being dropped.
    await sessionContext.ready;
    if (sessionContext.isTerminating) {
      await showDialog({
        title: trans.__('Kernel Terminating'),
        body: trans.__(
          'The kernel for %1 appears to be terminating. You can not run any cell for now.',
          sessionContext.session?.path
        ),
        buttons: [Dialog.okButton()]
      });
      return null;
    }
    if (sessionContext.hasNoKernel) {
      const shouldSelect = await sessionContext.startKernel();
      if (shouldSelect && sessionDialogs) {
        await sessionDialogs.selectKernel(sessionContext);
      }
    }
    const kernelId = sessionContext.session?.kernel?.id;
    if (sessionContext.hasNoKernel || !kernelId) {
      cell.model.sharedModel.transact(() => {
        (cell.model as ICodeCellModel).clearExecution();
      });
      return null;
    }
    onCellExecutionScheduled({ cell });
    const [entry] = await this._queue.client.queue({
      path: sessionContext.path,
      cell_id: cell.model.sharedModel.getId(),
      code: cell.model.sharedModel.getSource(),
      kernel_id: kernelId
    });
    // Show it queued at once; the events keep it up to date from here.
    this._queue.store.applyEntries([entry]);
    return entry;
  }

  private _chain(notebook: INotebookModel): SerialChain {
    let chain = this._chains.get(notebook);
    if (!chain) {
      chain = new SerialChain();
      this._chains.set(notebook, chain);
    }
    return chain;
  }

  private _queue: QueueService;
  private _trans: ITrans;
  private _chains = new WeakMap<INotebookModel, SerialChain>();
}

/**
 * A namespace for ServerCellExecutor statics.
 */
export namespace ServerCellExecutor {
  /**
   * Options of a ServerCellExecutor.
   */
  export interface IOptions {
    /** The page's connection to the queue. */
    queue: QueueService;
    /** The translation bundle. */
    trans?: ITrans;
  }
}
