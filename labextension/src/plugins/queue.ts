import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { QueueService } from '../queue/service';
import { IQueueService } from '../tokens';

/**
 * The page's connection to the server's execution queue: REST client, events
 * websocket (reconnecting with `since`) and the store they feed.
 */
export const queuePlugin: JupyterFrontEndPlugin<IQueueService> = {
  id: 'jupyter-canvas:queue',
  description:
    'Connects the page to the server execution queue and its events websocket.',
  autoStart: true,
  provides: IQueueService,
  activate: (app: JupyterFrontEnd): IQueueService => {
    const service = new QueueService({
      serverSettings: app.serviceManager.serverSettings
    });
    // Back online: do not wait for the next reconnection attempt.
    window.addEventListener('online', () => service.stream.reconnectNow());
    return service;
  }
};
