import type { ISessionContext } from '@jupyterlab/apputils';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';
import type { IKernelStatus } from '../contract';
import type { QueueService } from '../queue/service';
import { english, ITrans } from '../translation';
import { describeKernelStatus } from './describe';

/**
 * The status bar item showing the server's view of the current kernel:
 * process status, execution state and, when it is dead, why.
 *
 * A kernel that died for good leaves its session (the server removes it, and
 * the session with it): the item keeps showing that kernel, `dead` and why,
 * until a new kernel is chosen for the session. After a crash and automatic
 * restart it keeps the crash's time (and reason, in the tooltip).
 */
export class KernelStatusItem extends Widget {
  constructor(queue: QueueService, trans: ITrans = english) {
    super();
    this._queue = queue;
    this._trans = trans;
    this.addClass('jp-CanvasKernelStatus');
    this.node.setAttribute('role', 'status');
    queue.store.kernelChanged.connect(this._onKernelStatus, this);
    this._render();
  }

  /**
   * The session whose kernel is shown (null hides the item's text).
   */
  get sessionContext(): ISessionContext | null {
    return this._session;
  }
  set sessionContext(session: ISessionContext | null) {
    if (session === this._session) {
      return;
    }
    this._session?.kernelChanged.disconnect(this._onKernelChanged, this);
    this._session = session;
    session?.kernelChanged.connect(this._onKernelChanged, this);
    this._onKernelChanged();
  }

  /**
   * The id of the kernel shown, if any.
   */
  get kernelId(): string | null {
    return this._kernelId;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._tracker?.dispose();
    this._session?.kernelChanged.disconnect(this._onKernelChanged, this);
    this._queue.store.kernelChanged.disconnect(this._onKernelStatus, this);
    super.dispose();
  }

  private _onKernelChanged(): void {
    const session = this._session;
    let id = session?.session?.kernel?.id ?? null;
    if (session) {
      if (id === null) {
        // No kernel now: keep the one that was there (dead, say why).
        id = this._lastKernel.get(session) ?? null;
      } else {
        this._lastKernel.set(session, id);
      }
    }
    if (id === this._kernelId) {
      return;
    }
    this._kernelId = id;
    this._tracker?.dispose();
    // Tracking lists the kernel and fetches its status, now and after gaps.
    this._tracker = id ? this._queue.trackKernel(id) : null;
    this._render();
  }

  private _onKernelStatus(_: unknown, status: IKernelStatus): void {
    if (status.kernel_id === this._kernelId) {
      this._render();
    }
  }

  private _render(): void {
    if (!this._kernelId) {
      this.node.textContent = '';
      this.node.title = '';
      this.node.dataset.tone = 'other';
      return;
    }
    const store = this._queue.store;
    const described = describeKernelStatus(
      store.kernelStatus(this._kernelId),
      this._trans,
      store.lastCrash(this._kernelId)
    );
    this.node.textContent = described.text;
    this.node.title = described.title;
    this.node.dataset.tone = described.tone;
  }

  private _queue: QueueService;
  private _trans: ITrans;
  private _session: ISessionContext | null = null;
  private _kernelId: string | null = null;
  private _tracker: IDisposable | null = null;
  private _lastKernel = new WeakMap<ISessionContext, string>();
}
