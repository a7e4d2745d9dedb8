import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { CellQueueIndicator } from '../notebook/cellstatus';
import { IQueueService } from '../tokens';
import { TRANSLATION_DOMAIN } from '../translation';

/**
 * Shows on notebook cells whether they are queued (and their place), running,
 * waiting for input, or cancelled and why.
 */
export const cellQueueStatePlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-canvas:cell-queue-state',
  description: 'Shows the queue state of each notebook cell.',
  autoStart: true,
  requires: [INotebookTracker, IQueueService],
  optional: [ITranslator],
  activate: (
    _app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    queue: IQueueService,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    notebooks.widgetAdded.connect((_, panel) => {
      const indicator = new CellQueueIndicator(
        panel,
        queue,
        trans,
        translator ?? undefined
      );
      panel.disposed.connect(() => indicator.dispose());
    });
  }
};
