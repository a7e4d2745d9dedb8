import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { isTerminal } from '../contract';
import { IQueueService } from '../tokens';
import { TRANSLATION_DOMAIN } from '../translation';

/**
 * The ids of the queue commands.
 */
export namespace QueueCommandIDs {
  export const cancelCell = 'jupyter-canvas:cancel-cell';
  export const clearQueue = 'jupyter-canvas:clear-queue';
}

/**
 * The arguments of the queue commands: `toolbar` shortens the label.
 */
const TOOLBAR_ARGS = {
  args: {
    type: 'object',
    properties: {
      toolbar: {
        type: 'boolean',
        description: 'Whether the command is shown as a toolbar button'
      }
    }
  }
};

function errorText(reason: unknown): string {
  return reason instanceof Error ? reason.message : `${reason}`;
}

/**
 * "Cancel Cell" (one cell only: the cell's context menu, and the ✕ on its
 * badge) and "Clear the queue" (the notebook toolbar, see
 * schema/queue-actions.json) for the current notebook, also in the palette.
 *
 * There is no second interrupt button: JupyterLab's own ■ interrupts the
 * kernel, and the server's queue follows stop-on-error (the interrupted cell
 * fails, the cells queued after it are cancelled).
 */
export const queueActionsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-canvas:queue-actions',
  description: 'Cancel one cell, or clear the queue of a notebook.',
  autoStart: true,
  requires: [INotebookTracker, IQueueService],
  optional: [ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    queue: IQueueService,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const current = () => notebooks.currentWidget;
    const isEnabled = () => current() !== null;
    // The live entry of the active cell of the current notebook, if any.
    const activeEntry = () => {
      const panel = current();
      const cell = panel?.content.activeCell;
      if (!panel || !cell || cell.model.type !== 'code') {
        return undefined;
      }
      const entry = queue.store.cellEntry(panel.context.path, cell.model.id);
      return entry && !isTerminal(entry.state) ? entry : undefined;
    };

    app.commands.addCommand(QueueCommandIDs.cancelCell, {
      label: trans.__('Cancel Cell'),
      caption: trans.__(
        'Cancel the active cell only: a queued cell leaves the queue, a running one is interrupted; the cells queued after it still run'
      ),
      describedBy: { args: { type: 'object', properties: {} } },
      isEnabled: () => activeEntry() !== undefined,
      isVisible: () => current() !== null,
      execute: async () => {
        const entry = activeEntry();
        if (!entry) {
          Notification.info(trans.__('This cell is not queued or running.'), {
            autoClose: 3000
          });
          return;
        }
        try {
          await queue.cancel(entry.id);
        } catch (reason) {
          Notification.error(
            trans.__('Could not cancel: %1', errorText(reason))
          );
        }
      }
    });
    app.contextMenu.addItem({
      command: QueueCommandIDs.cancelCell,
      selector: '.jp-Notebook .jp-CodeCell',
      rank: 12
    });

    app.commands.addCommand(QueueCommandIDs.clearQueue, {
      label: args =>
        args.toolbar ? trans.__('Clear queue') : trans.__('Clear the Queue'),
      caption: trans.__(
        "Cancel this notebook's queued cells and interrupt the running one"
      ),
      describedBy: TOOLBAR_ARGS,
      isEnabled,
      execute: async () => {
        const panel = current();
        if (!panel) {
          return;
        }
        try {
          const cancelled = await queue.client.clear({
            path: panel.context.path
          });
          await queue.syncPath(panel.context.path);
          Notification.info(
            cancelled.length
              ? trans._n(
                  'Cancelled %1 cell.',
                  'Cancelled %1 cells.',
                  cancelled.length,
                  cancelled.length
                )
              : trans.__('The queue was empty.'),
            { autoClose: 3000 }
          );
        } catch (reason) {
          Notification.error(
            trans.__('Could not clear the queue: %1', errorText(reason))
          );
        }
      }
    });

    if (palette) {
      const category = trans.__('Notebook Operations');
      palette.addItem({ command: QueueCommandIDs.cancelCell, category });
      palette.addItem({ command: QueueCommandIDs.clearQueue, category });
    }
  }
};
