import { Token } from '@lumino/coreutils';
import type { QueueService } from './queue/service';

/**
 * The page's connection to the server's execution queue (REST client, events
 * websocket and the store they feed).
 */
export const IQueueService = new Token<IQueueService>(
  'jupyter-canvas:IQueueService',
  'The execution queue of the server: queue cells, follow their state and the kernels.'
);

/**
 * The page's connection to the server's execution queue.
 */
export type IQueueService = QueueService;
