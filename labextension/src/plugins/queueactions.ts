import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { IQueueService } from '../tokens';
import { TRANSLATION_DOMAIN } from '../translation';

/**
 * The ids of the queue commands.
 */
export namespace QueueCommandIDs {
  export const interrupt = 'jupyter-canvas:interrupt';
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
 * "Interrupt the running cell" and "Clear the queue" for the current notebook,
 * in the notebook toolbar (see schema/queue-actions.json) and the palette.
 */
export const queueActionsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-canvas:queue-actions',
  description: 'Interrupt the running cell and clear the queue of a notebook.',
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

    app.commands.addCommand(QueueCommandIDs.interrupt, {
      label: args =>
        args.toolbar
          ? trans.__('Interrupt cell')
          : trans.__('Interrupt the Running Cell'),
      caption: trans.__(
        'Cancel the cell the server runs for this notebook (its kernel is interrupted); queued cells stay queued'
      ),
      describedBy: TOOLBAR_ARGS,
      isEnabled,
      execute: async () => {
        const panel = current();
        const kernelId = panel?.sessionContext.session?.kernel?.id;
        if (!panel || !kernelId) {
          return;
        }
        try {
          let running = queue.store.runningEntry(kernelId);
          if (!running) {
            const listed = await queue.client.list({
              kernelId,
              states: ['running', 'awaiting_input']
            });
            queue.store.applyEntries(listed);
            running = listed[0];
          }
          if (!running) {
            Notification.info(trans.__('Nothing is running on this kernel.'), {
              autoClose: 3000
            });
            return;
          }
          queue.store.applyEntries([await queue.client.cancel(running.id)]);
        } catch (reason) {
          Notification.error(
            trans.__('Could not interrupt: %1', errorText(reason))
          );
        }
      }
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
      palette.addItem({ command: QueueCommandIDs.interrupt, category });
      palette.addItem({ command: QueueCommandIDs.clearQueue, category });
    }
  }
};
