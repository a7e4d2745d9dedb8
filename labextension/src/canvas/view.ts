import { Notification } from '@jupyterlab/apputils';
import type { ICellModel } from '@jupyterlab/cells';
import { CodeEditor, IEditorMimeTypeService } from '@jupyterlab/codeeditor';
import { PathExt, URLExt } from '@jupyterlab/coreutils';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type { INotebookModel } from '@jupyterlab/notebook';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IDisposable } from '@lumino/disposable';
import { Message, MessageLoop } from '@lumino/messaging';
import { PanelLayout, Widget } from '@lumino/widgets';
import type { ILanguageInfoMetadata } from '@jupyterlab/nbformat';
import type { ICanvasLayout, ICellPlacement, IQueueRequest } from '../contract';
import { renderQueueBadge } from '../notebook/cellstatus';
import { queueBadge } from '../queue/labels';
import { SerialChain } from '../queue/serial';
import type { QueueService } from '../queue/service';
import { english, ITrans } from '../translation';
import { CanvasCard, ICardHost } from './card';
import {
  chainEdges,
  edgePath,
  groupFrames,
  IRect,
  placeCells,
  union
} from './geometry';
import { computeGraphs, headingLevel, ICanvasGraphs } from './graphs';
import { CanvasRoom } from './room';
import { fitRect, IViewport, panBy, planeTransform, zoomAt } from './viewport';

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * How often (ms) a card being dragged is written to the room, so peers see it move.
 */
const DRAG_WRITE_INTERVAL = 80;

/**
 * Lays the cards out on the plane node instead of the widget's own node.
 */
class PlaneLayout extends PanelLayout {
  constructor(private readonly _host: HTMLElement) {
    super();
  }

  protected attachWidget(_index: number, widget: Widget): void {
    const attached = this.parent?.isAttached ?? false;
    if (attached) {
      MessageLoop.sendMessage(widget, Widget.Msg.BeforeAttach);
    }
    this._host.appendChild(widget.node);
    if (attached) {
      MessageLoop.sendMessage(widget, Widget.Msg.AfterAttach);
    }
  }

  protected moveWidget(): void {
    // Cards are placed absolutely: their order in the DOM does not matter.
  }

  protected detachWidget(_index: number, widget: Widget): void {
    const attached = this.parent?.isAttached ?? false;
    if (attached) {
      MessageLoop.sendMessage(widget, Widget.Msg.BeforeDetach);
    }
    widget.node.remove();
    if (attached) {
      MessageLoop.sendMessage(widget, Widget.Msg.AfterDetach);
    }
  }
}

/**
 * The canvas view of a notebook: every cell a card on a pannable, zoomable
 * plane at its layout position, heading groups framed, the `np_graph` chain
 * drawn as edges. Positions are shared through the notebook's canvas Y room;
 * sources and outputs are the shared notebook document's.
 */
export class CanvasView extends Widget implements ICardHost {
  constructor(options: CanvasView.IOptions) {
    super();
    this._context = options.context;
    this._queue = options.queue;
    this._trans = options.trans ?? english;
    this._rendermime = options.rendermime;
    this._editorFactory = options.editorFactory;
    this._mimeService = options.mimeTypeService ?? null;
    this.addClass('jp-CanvasView');
    this.node.tabIndex = -1;

    this._plane = document.createElement('div');
    this._plane.className = 'jp-CanvasView-plane';
    this._links = document.createElementNS(SVG_NS, 'svg');
    this._links.classList.add('jp-CanvasView-links');
    this._plane.appendChild(this._links);
    this.node.appendChild(this._plane);

    this._banner = document.createElement('div');
    this._banner.className = 'jp-CanvasView-banner';
    this.node.appendChild(this._banner);

    this.layout = new PlaneLayout(this._plane);
    this._resizeObserver = new ResizeObserver(() => this._scheduleLinks());
    this._applyViewport();

    this._queue.store.changed.connect(this._scheduleBadges, this);
    void this._context.ready.then(() => this._start());
  }

  /**
   * The viewport (pan and zoom).
   */
  get viewport(): IViewport {
    return { ...this._view };
  }
  set viewport(view: IViewport) {
    this._view = { ...view };
    this._applyViewport();
  }

  /**
   * The card of a cell, if shown.
   */
  card(cellId: string): CanvasCard | undefined {
    return this._cards.get(cellId);
  }

  /**
   * The cards, in notebook order.
   */
  get cards(): CanvasCard[] {
    return this._order
      .map(id => this._cards.get(id))
      .filter((c): c is CanvasCard => c !== undefined);
  }

  /**
   * The canvas room, once joined.
   */
  get room(): CanvasRoom | null {
    return this._room;
  }

  /**
   * Zoom around the middle of the view.
   */
  zoomBy(factor: number): void {
    const rect = this.node.getBoundingClientRect();
    this.viewport = zoomAt(this._view, factor, {
      x: rect.width / 2,
      y: rect.height / 2
    });
  }

  /**
   * Show every card.
   */
  fit(): void {
    const bounds = union([...this._rects().values()]);
    if (!bounds) {
      return;
    }
    const rect = this.node.getBoundingClientRect();
    if (rect.width < 10 || rect.height < 10) {
      return;
    }
    this.viewport = fitRect(bounds, rect.width, rect.height);
  }

  /**
   * Queue every code cell of the notebook.
   */
  runAll(): void {
    this._submit({ select: 'all' });
  }

  // -- ICardHost ---------------------------------------------------------------

  run(card: CanvasCard): void {
    this._submit({
      cell_id: card.cellId,
      code: card.model.sharedModel.getSource()
    });
  }

  runGroup(card: CanvasCard): void {
    this._submit({ select: { group: card.cellId } });
  }

  toggleCollapsed(card: CanvasCard): void {
    const placement = this._placements.get(card.cellId);
    if (!placement) {
      return;
    }
    const collapsed = !placement.collapsed;
    this._write(card.cellId, { collapsed }, { ...placement, collapsed });
  }

  startDrag(card: CanvasCard, event: PointerEvent): void {
    const origin = this._placements.get(card.cellId);
    if (!origin) {
      return;
    }
    event.preventDefault();
    const header = card.header;
    header.setPointerCapture(event.pointerId);
    card.addClass('jp-mod-dragging');
    const start = { x: event.clientX, y: event.clientY };
    let last = 0;
    let moved = false;
    const at = (e: PointerEvent): ICellPlacement => ({
      ...origin,
      x: Math.round(origin.x + (e.clientX - start.x) / this._view.scale),
      y: Math.round(origin.y + (e.clientY - start.y) / this._view.scale)
    });
    const onMove = (e: PointerEvent) => {
      if (e.pointerId !== event.pointerId) {
        return;
      }
      moved = true;
      const placement = at(e);
      this._dragging = { id: card.cellId, placement };
      card.setPlacement(placement);
      this._scheduleLinks();
      const now = Date.now();
      if (now - last >= DRAG_WRITE_INTERVAL) {
        last = now;
        this._write(card.cellId, { x: placement.x, y: placement.y }, placement);
      }
    };
    const onUp = (e: PointerEvent) => {
      if (e.pointerId !== event.pointerId) {
        return;
      }
      header.removeEventListener('pointermove', onMove);
      header.removeEventListener('pointerup', onUp);
      header.removeEventListener('pointercancel', onUp);
      card.removeClass('jp-mod-dragging');
      this._dragging = null;
      if (moved) {
        const placement = at(e);
        this._write(card.cellId, { x: placement.x, y: placement.y }, placement);
      }
      this._relayout();
    };
    header.addEventListener('pointermove', onMove);
    header.addEventListener('pointerup', onUp);
    header.addEventListener('pointercancel', onUp);
  }

  // -- lifecycle ---------------------------------------------------------------

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._resizeObserver.disconnect();
    this._room?.dispose();
    this._trackers.forEach(t => t.dispose());
    this._kernelTracker?.dispose();
    this._queue.store.changed.disconnect(this._scheduleBadges, this);
    if (this._frame !== null) {
      cancelAnimationFrame(this._frame);
    }
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.node.addEventListener('pointerdown', this._onPointerDown);
    this.node.addEventListener('wheel', this._onWheel, { passive: false });
    this._scheduleLinks();
  }

  protected onBeforeDetach(msg: Message): void {
    this.node.removeEventListener('pointerdown', this._onPointerDown);
    this.node.removeEventListener('wheel', this._onWheel);
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._scheduleLinks();
  }

  private async _start(): Promise<void> {
    const model = this._context.model;
    model.cells.changed.connect(this._syncCards, this);
    model.contentChanged.connect(this._scheduleRelayout, this);
    this._context.sessionContext.kernelChanged.connect(this._trackKernel, this);
    this._trackers.push(this._queue.trackPath(this._context.path));
    this._trackKernel();
    this._syncCards();
    this._setBanner(this._trans.__('Loading the canvas layout…'));
    let layout: ICanvasLayout;
    try {
      layout = await this._queue.client.layout(this._context.path);
    } catch (reason) {
      const message = reason instanceof Error ? reason.message : `${reason}`;
      this._setBanner(
        this._trans.__(
          'The canvas layout is not available (%1); moves stay on this page.',
          message
        ),
        true
      );
      this._fitOnce();
      return;
    }
    if (this.isDisposed) {
      return;
    }
    this._restLayout = layout;
    this._relayout();
    this._join(layout);
  }

  private _join(layout: ICanvasLayout): void {
    const settings = this._queue.client.serverSettings;
    const params: Record<string, string> = {};
    if (settings.appendToken && settings.token) {
      params.token = settings.token;
    }
    const room = layout.room || `api/canvas/room/${layout.file_id}`;
    this._room = new CanvasRoom({
      serverUrl: URLExt.join(settings.wsUrl, PathExt.dirname(room)),
      roomName: PathExt.basename(room),
      params,
      WebSocket: settings.WebSocket
    });
    this._room.changed.connect(this._scheduleRelayout, this);
    this._room.statusChanged.connect((_, status) => {
      if (status === 'connected') {
        this._setBanner('');
      } else if (status === 'disconnected') {
        this._setBanner(this._trans.__('Reconnecting to the canvas room…'));
      }
    });
    this._setBanner(this._trans.__('Joining the canvas room…'));
    void this._room.synced.then(() => {
      this._setBanner('');
      this._relayout();
      this._fitOnce();
    });
  }

  /**
   * Create and remove cards to match the notebook's cells.
   */
  private _syncCards(): void {
    const model = this._context.model;
    const seen = new Set<string>();
    const order: string[] = [];
    const language = this._languageMime();
    const layout = this.layout as PanelLayout;
    for (const cell of model.cells) {
      const id = cell.id;
      seen.add(id);
      order.push(id);
      const existing = this._cards.get(id);
      if (existing && existing.model === cell) {
        continue;
      }
      existing?.dispose();
      if (language && cell.type === 'code' && cell.mimeType !== language) {
        cell.mimeType = language;
      }
      const card = new CanvasCard({
        model: cell as ICellModel,
        host: this,
        rendermime: this._rendermime,
        editorFactory: this._editorFactory,
        trans: this._trans
      });
      this._cards.set(id, card);
      layout.addWidget(card);
      this._resizeObserver.observe(card.node);
    }
    for (const [id, card] of this._cards) {
      if (!seen.has(id)) {
        this._resizeObserver.unobserve(card.node);
        card.dispose();
        this._cards.delete(id);
      }
    }
    this._order = order;
    this._relayout();
    this._scheduleBadges();
  }

  private _scheduleRelayout(): void {
    if (this._relayoutFrame === null && !this.isDisposed) {
      this._relayoutFrame = requestAnimationFrame(() => {
        this._relayoutFrame = null;
        this._relayout();
      });
    }
  }

  /**
   * Place every card from the room (or the REST layout, or defaults).
   */
  private _relayout(): void {
    if (this.isDisposed) {
      return;
    }
    const stored: Record<string, Partial<ICellPlacement>> = {
      ...(this._restLayout?.cells ?? {})
    };
    const roomLayout = this._room?.layout();
    if (roomLayout) {
      for (const [id, placement] of Object.entries(roomLayout.cells)) {
        stored[id] = { ...stored[id], ...placement };
      }
    }
    this._placements = placeCells(this._order, stored);
    if (this._dragging) {
      this._placements.set(this._dragging.id, this._dragging.placement);
    }
    this._graphs = this._currentGraphs(roomLayout);
    for (const [id, placement] of this._placements) {
      const card = this._cards.get(id);
      if (!card) {
        continue;
      }
      const current = card.placement;
      if (
        !current ||
        current.x !== placement.x ||
        current.y !== placement.y ||
        current.width !== placement.width ||
        current.height !== placement.height ||
        current.collapsed !== placement.collapsed
      ) {
        card.setPlacement(placement);
      }
      card.setHeadingLevel(
        headingLevel({
          id,
          type: card.model.type,
          source: card.model.sharedModel.getSource()
        })
      );
    }
    this._scheduleLinks();
  }

  /**
   * The room's graphs when it has them, else the notebook's own by the same rule.
   */
  private _currentGraphs(
    roomLayout:
      | {
          np_graph: Record<string, string[]>;
          pc_graph: Record<string, string[]>;
        }
      | undefined
  ): ICanvasGraphs {
    const local = computeGraphs(
      this._order.map(id => {
        const card = this._cards.get(id);
        return {
          id,
          type: card?.model.type ?? 'code',
          source: card?.model.sharedModel.getSource() ?? ''
        };
      })
    );
    if (
      roomLayout &&
      (Object.keys(roomLayout.pc_graph).length ||
        Object.keys(roomLayout.np_graph).length)
    ) {
      // The room is authoritative for cells it knows; new cells come from here.
      const known = new Set(this._order);
      const usable = Object.keys(roomLayout.pc_graph).every(id =>
        known.has(id)
      );
      if (usable) {
        return { pc_graph: roomLayout.pc_graph, np_graph: roomLayout.np_graph };
      }
    }
    return local;
  }

  private _rects(): Map<string, IRect> {
    const rects = new Map<string, IRect>();
    for (const [id, placement] of this._placements) {
      const card = this._cards.get(id);
      const height = card?.measuredHeight() || placement.height;
      rects.set(id, {
        x: placement.x,
        y: placement.y,
        width: placement.width,
        height
      });
    }
    return rects;
  }

  private _scheduleLinks(): void {
    if (this._frame === null && !this.isDisposed) {
      this._frame = requestAnimationFrame(() => {
        this._frame = null;
        this._drawLinks();
      });
    }
  }

  /**
   * Draw the group frames and the chain edges.
   */
  private _drawLinks(): void {
    if (!this.isVisible) {
      return;
    }
    const rects = this._rects();
    const frames = groupFrames(this._graphs.pc_graph, rects, 14);
    const boxes = new Map(rects);
    for (const frame of frames) {
      boxes.set(frame.headingId, frame.rect);
    }
    const edges = chainEdges(this._graphs.np_graph, boxes);
    const svg = this._links;
    while (svg.firstChild) {
      svg.removeChild(svg.firstChild);
    }
    const defs = document.createElementNS(SVG_NS, 'defs');
    const marker = document.createElementNS(SVG_NS, 'marker');
    marker.setAttribute('id', `${this.id || 'jp-canvas'}-arrow`);
    marker.setAttribute('viewBox', '0 0 10 10');
    marker.setAttribute('refX', '9');
    marker.setAttribute('refY', '5');
    marker.setAttribute('markerWidth', '8');
    marker.setAttribute('markerHeight', '8');
    marker.setAttribute('orient', 'auto-start-reverse');
    const tip = document.createElementNS(SVG_NS, 'path');
    tip.setAttribute('d', 'M 0 0 L 10 5 L 0 10 z');
    tip.classList.add('jp-CanvasView-arrow');
    marker.appendChild(tip);
    defs.appendChild(marker);
    svg.appendChild(defs);
    for (const frame of frames) {
      const rect = document.createElementNS(SVG_NS, 'rect');
      rect.classList.add('jp-CanvasView-frame');
      rect.dataset.heading = frame.headingId;
      rect.dataset.depth = `${frame.depth}`;
      rect.setAttribute('x', `${frame.rect.x}`);
      rect.setAttribute('y', `${frame.rect.y}`);
      rect.setAttribute('width', `${frame.rect.width}`);
      rect.setAttribute('height', `${frame.rect.height}`);
      rect.setAttribute('rx', '10');
      svg.appendChild(rect);
    }
    for (const edge of edges) {
      const path = document.createElementNS(SVG_NS, 'path');
      path.classList.add('jp-CanvasView-edge');
      path.dataset.from = edge.from;
      path.dataset.to = edge.to;
      path.setAttribute('d', edgePath(edge));
      path.setAttribute('marker-end', `url(#${marker.id})`);
      svg.appendChild(path);
    }
  }

  private _scheduleBadges(): void {
    if (this._badgeFrame === null && !this.isDisposed) {
      this._badgeFrame = requestAnimationFrame(() => {
        this._badgeFrame = null;
        this._updateBadges();
      });
    }
  }

  private _updateBadges(): void {
    const store = this._queue.store;
    const path = this._context.path;
    for (const card of this._cards.values()) {
      if (card.model.type !== 'code') {
        continue;
      }
      const entry = store.cellEntry(path, card.cellId);
      const badge = queueBadge(
        entry,
        entry ? store.position(entry.id) : null,
        this._trans
      );
      renderQueueBadge(
        card.header,
        badge,
        entry,
        (id, value) => void this._queue.answerInput(id, value),
        this._trans
      );
      card.toggleClass('jp-mod-queueActive', badge !== null);
    }
  }

  private _submit(request: IQueueRequest): void {
    const path = this._context.path;
    void this._runChain.run(async () => {
      const kernelId = this._context.sessionContext.session?.kernel?.id;
      try {
        const entries = await this._queue.client.queue({
          path,
          ...(kernelId ? { kernel_id: kernelId } : {}),
          ...request
        });
        this._queue.store.applyEntries(entries);
      } catch (reason) {
        const message = reason instanceof Error ? reason.message : `${reason}`;
        Notification.error(this._trans.__('Nothing was queued: %1', message), {
          autoClose: 8000
        });
      }
    });
  }

  private _write(
    cellId: string,
    change: Partial<ICellPlacement>,
    full: ICellPlacement
  ): void {
    if (this._room) {
      this._room.place(cellId, change, full);
    } else {
      // Without a room the move stays on this page.
      this._restLayout = this._restLayout ?? {
        path: this._context.path,
        file_id: '',
        room: '',
        cells: {},
        np_graph: {},
        pc_graph: {}
      };
      this._restLayout.cells[cellId] = { ...full, ...change };
      this._scheduleRelayout();
    }
  }

  private _trackKernel(): void {
    const id = this._context.sessionContext.session?.kernel?.id;
    if (id === this._kernelId) {
      return;
    }
    this._kernelId = id;
    this._kernelTracker?.dispose();
    this._kernelTracker = id ? this._queue.trackKernel(id) : null;
  }

  private _languageMime(): string | null {
    if (!this._mimeService) {
      return null;
    }
    const info = this._context.model.getMetadata('language_info') as
      ILanguageInfoMetadata | undefined;
    return info ? this._mimeService.getMimeTypeByLanguage(info) : null;
  }

  private _fitOnce(): void {
    if (this._fitted) {
      return;
    }
    this._fitted = true;
    requestAnimationFrame(() => this.fit());
  }

  private _setBanner(text: string, warning = false): void {
    this._banner.textContent = text;
    this._banner.hidden = text === '';
    this._banner.classList.toggle('jp-mod-warning', warning);
  }

  private _applyViewport(): void {
    this._plane.style.transform = planeTransform(this._view);
    this.node.dataset.scale = `${this._view.scale}`;
  }

  private _onPointerDown = (event: PointerEvent): void => {
    const target = event.target as Element;
    if (event.button !== 0 || target.closest('.jp-CanvasCard')) {
      return;
    }
    event.preventDefault();
    this.node.focus();
    this.node.setPointerCapture(event.pointerId);
    this.addClass('jp-mod-panning');
    let last = { x: event.clientX, y: event.clientY };
    const onMove = (e: PointerEvent) => {
      this.viewport = panBy(this._view, e.clientX - last.x, e.clientY - last.y);
      last = { x: e.clientX, y: e.clientY };
    };
    const onUp = () => {
      this.removeClass('jp-mod-panning');
      this.node.removeEventListener('pointermove', onMove);
      this.node.removeEventListener('pointerup', onUp);
      this.node.removeEventListener('pointercancel', onUp);
    };
    this.node.addEventListener('pointermove', onMove);
    this.node.addEventListener('pointerup', onUp);
    this.node.addEventListener('pointercancel', onUp);
  };

  private _onWheel = (event: WheelEvent): void => {
    event.preventDefault();
    if (event.ctrlKey || event.metaKey) {
      const rect = this.node.getBoundingClientRect();
      this.viewport = zoomAt(this._view, Math.exp(-event.deltaY * 0.002), {
        x: event.clientX - rect.left,
        y: event.clientY - rect.top
      });
    } else {
      this.viewport = panBy(this._view, -event.deltaX, -event.deltaY);
    }
  };

  private _context: DocumentRegistry.IContext<INotebookModel>;
  private _queue: QueueService;
  private _trans: ITrans;
  private _rendermime: IRenderMimeRegistry;
  private _editorFactory: CodeEditor.Factory;
  private _mimeService: IEditorMimeTypeService | null;
  private _plane: HTMLDivElement;
  private _links: SVGSVGElement;
  private _banner: HTMLDivElement;
  private _resizeObserver: ResizeObserver;
  private _cards = new Map<string, CanvasCard>();
  private _order: string[] = [];
  private _placements = new Map<string, ICellPlacement>();
  private _graphs: ICanvasGraphs = { np_graph: {}, pc_graph: {} };
  private _view: IViewport = { x: 40, y: 40, scale: 1 };
  private _restLayout: ICanvasLayout | null = null;
  private _room: CanvasRoom | null = null;
  private _dragging: { id: string; placement: ICellPlacement } | null = null;
  private _frame: number | null = null;
  private _relayoutFrame: number | null = null;
  private _badgeFrame: number | null = null;
  private _fitted = false;
  private _runChain = new SerialChain();
  private _trackers: IDisposable[] = [];
  private _kernelId: string | undefined;
  private _kernelTracker: IDisposable | null = null;
}

/**
 * A namespace for CanvasView statics.
 */
export namespace CanvasView {
  /**
   * Options of a CanvasView.
   */
  export interface IOptions {
    /** The notebook's document context (shared with its notebook views). */
    context: DocumentRegistry.IContext<INotebookModel>;
    /** The page's connection to the queue. */
    queue: QueueService;
    /** JupyterLab's renderers. */
    rendermime: IRenderMimeRegistry;
    /** Makes the source editors. */
    editorFactory: CodeEditor.Factory;
    /** Finds the editor mode of the notebook's language. */
    mimeTypeService?: IEditorMimeTypeService;
    /** The translation bundle. */
    trans?: ITrans;
  }
}
