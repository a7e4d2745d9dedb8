import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import type { ISessionContext } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import type { Widget } from '@lumino/widgets';
import { KernelStatusItem } from '../status/kernelstatus';
import { IQueueService } from '../tokens';
import { TRANSLATION_DOMAIN } from '../translation';

function sessionOf(widget: Widget | null): ISessionContext | null {
  const candidate = widget as unknown as { sessionContext?: ISessionContext };
  return candidate?.sessionContext ?? null;
}

/**
 * A status bar item with the server's view of the current kernel: process
 * status, execution state and the reason a kernel died, kept current by the
 * events websocket.
 */
export const kernelStatusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-canvas:kernel-status',
  description:
    'Shows the kernel status the server reports, with the reason a kernel died.',
  autoStart: true,
  requires: [IQueueService, IStatusBar, ILabShell],
  optional: [ITranslator],
  activate: (
    _app: JupyterFrontEnd,
    queue: IQueueService,
    statusBar: IStatusBar,
    shell: ILabShell,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const item = new KernelStatusItem(queue, trans);
    const follow = () => {
      item.sessionContext = sessionOf(shell.currentWidget);
    };
    shell.currentChanged.connect(follow);
    follow();
    statusBar.registerStatusItem('jupyter-canvas:kernel-status', {
      item,
      align: 'left',
      rank: 4
    });
  }
};
