import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICollaborativeContentProvider } from '@jupyter/collaborative-drive';
import { INotebookCellExecutor } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { ServerCellExecutor } from '../notebook/executor';
import { IQueueService } from '../tokens';
import { TRANSLATION_DOMAIN } from '../translation';

/**
 * Runs notebook cells through the server queue (`POST /api/queue`) instead of
 * the page's kernel connection. Outputs come back through the shared notebook
 * document, so the collaboration frontend is required.
 */
export const cellExecutorPlugin: JupyterFrontEndPlugin<INotebookCellExecutor> =
  {
    id: 'jupyter-canvas:cell-executor',
    description:
      'Queues notebook cells on the server; outputs arrive through the shared document.',
    autoStart: true,
    provides: INotebookCellExecutor,
    requires: [IQueueService, ICollaborativeContentProvider],
    optional: [ITranslator],
    activate: (
      _app: JupyterFrontEnd,
      queue: IQueueService,
      _collaboration: ICollaborativeContentProvider,
      translator: ITranslator | null
    ): INotebookCellExecutor =>
      new ServerCellExecutor({
        queue,
        trans: (translator ?? nullTranslator).load(TRANSLATION_DOMAIN)
      })
  };
