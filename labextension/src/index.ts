import type { JupyterFrontEndPlugin } from '@jupyterlab/application';
import { canvasPlugin } from './plugins/canvas';
import { cellExecutorPlugin } from './plugins/cellexecutor';
import { cellQueueStatePlugin } from './plugins/cellqueuestate';
import { kernelStatusPlugin } from './plugins/kernelstatus';
import { queuePlugin } from './plugins/queue';
import { queueActionsPlugin } from './plugins/queueactions';

export { IQueueService } from './tokens';
export * from './contract';

/**
 * The plugins of the jupyter_canvas frontend.
 */
const plugins: JupyterFrontEndPlugin<any>[] = [
  queuePlugin,
  cellExecutorPlugin,
  cellQueueStatePlugin,
  queueActionsPlugin,
  kernelStatusPlugin,
  canvasPlugin
];

export default plugins;
