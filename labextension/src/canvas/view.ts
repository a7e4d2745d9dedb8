import type { ICellModel } from '@jupyterlab/cells';
import { CodeEditor, IEditorMimeTypeService } from '@jupyterlab/codeeditor';
import { PathExt, URLExt } from '@jupyterlab/coreutils';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type { INotebookModel } from '@jupyterlab/notebook';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Message } from '@lumino/messaging';
import { PanelLayout, Widget } from '@lumino/widgets';
import type { ILanguageInfoMetadata } from '@jupyterlab/nbformat';
import type { ICanvasLayout, ICellPlacement } from '../contract';
import type { QueueService } from '../queue/service';
import { english, ITrans } from '../translation';
import { CanvasCard, ICardHost } from './card';
import { computeGraphs, headingLevel, ICanvasGraphs } from './graphs';
import { CanvasInteraction, IInteractionHost } from './interaction';
import {
  contentBounds,
  fitView,
  ILayout,
  layoutCards,
  membersOf
} from './layout';
import { CanvasLinks } from './links';
import { PlaneLayout } from './planelayout';
import { CanvasQueueing } from './queueing';
import { CanvasRoom, IRoomLayout } from './room';
import { IViewport, planeTransform, zoomAt } from './viewport';

/**
 * The canvas view of a notebook: every cell a card on a pannable, zoomable
 * plane, each top-level heading group a column (see `layout.ts`), groups
 * framed and the `np_graph` chain drawn (`links.ts`), pointer and keys handled
 * by `interaction.ts`. Places are shared through the notebook's canvas Y room;
 * sources and outputs are the shared notebook document's.
 */
export class CanvasView extends Widget implements ICardHost, IInteractionHost {
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
    this._links = new CanvasLinks(`jp-canvas-arrow-${Private.ids.next++}`);
    this._plane.appendChild(this._links.node);
    this.node.appendChild(this._plane);

    this._banner = document.createElement('div');
    this._banner.className = 'jp-CanvasView-banner';
    this.node.appendChild(this._banner);

    this.layout = new PlaneLayout(this._plane);
    this._interaction = new CanvasInteraction(this);
    // A card growing or shrinking (outputs, edits, folding) moves the cards below it.
    this._resizeObserver = new ResizeObserver(() => this._scheduleRelayout());
    this._applyViewport();

    this._queueing = new CanvasQueueing({
      queue: this._queue,
      context: this._context,
      trans: this._trans,
      cards: () => this._cards.values()
    });
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
   * Where every card is drawn.
   */
  get currentLayout(): ILayout {
    return this._cardLayout;
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
   * The selected card's cell id.
   */
  get selected(): string | null {
    return this._interaction.selected;
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
   * Show as much as fits, never with code smaller than 11 px on screen.
   */
  fit(): void {
    this._relayout();
    const bounds = contentBounds(this._cardLayout);
    const rect = this.node.getBoundingClientRect();
    if (!bounds || rect.width < 10 || rect.height < 10) {
      return;
    }
    this.viewport = fitView(bounds, rect.width, rect.height, this._codePx());
  }

  /**
   * Queue every code cell of the notebook.
   */
  runAll(): void {
    this._queueing.submit({ select: 'all' });
  }

  // -- ICardHost and IInteractionHost -------------------------------------------

  run(target: CanvasCard | string): void {
    const card = typeof target === 'string' ? this._cards.get(target) : target;
    if (!card) {
      return;
    }
    if (card.model.type !== 'code') {
      card.render();
      return;
    }
    this._queueing.submit({
      cell_id: card.cellId,
      code: card.model.sharedModel.getSource()
    });
  }

  runGroup(card: CanvasCard): void {
    this._queueing.submit({ select: { group: card.cellId } });
  }

  toggleCollapsed(card: CanvasCard): void {
    const collapsed = !(
      this._cardLayout.boxes.get(card.cellId)?.collapsed ?? false
    );
    this._write(card.cellId, { collapsed });
  }

  startDrag(card: CanvasCard, event: PointerEvent): void {
    this._interaction.startDrag(card, event);
  }

  unplace(card: CanvasCard): void {
    if (this._cardLayout.boxes.get(card.cellId)?.placed) {
      this._write(card.cellId, { placed: false });
    }
  }

  setDragging(drag: { id: string; x: number; y: number } | null): void {
    this._dragging = drag;
    this._relayout();
  }

  place(cellId: string, x: number, y: number): void {
    const box = this._cardLayout.boxes.get(cellId);
    this._write(cellId, {
      x,
      y,
      placed: true,
      ...(box ? { width: box.width, height: Math.round(box.height) } : {})
    });
  }

  // -- lifecycle ---------------------------------------------------------------

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._resizeObserver.disconnect();
    this._room?.dispose();
    this._queueing.dispose();
    for (const frame of this._frames.values()) {
      cancelAnimationFrame(frame);
    }
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._interaction.attach();
    this._scheduleRelayout();
  }

  protected onBeforeDetach(msg: Message): void {
    this._interaction.detach();
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._scheduleRelayout();
  }

  private async _start(): Promise<void> {
    const model = this._context.model;
    model.cells.changed.connect(this._syncCards, this);
    model.contentChanged.connect(this._scheduleRelayout, this);
    this._queueing.start();
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
    this._queueing.scheduleBadges();
  }

  private _scheduleRelayout(): void {
    this._schedule('layout', () => this._relayout());
  }

  private _schedule(name: string, fn: () => void): void {
    if (!this._frames.has(name) && !this.isDisposed) {
      this._frames.set(
        name,
        requestAnimationFrame(() => {
          this._frames.delete(name);
          fn();
        })
      );
    }
  }

  /**
   * Lay every card out from the room (or the REST layout) and the cards'
   * measured heights, then draw the frames and edges.
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
    if (this._dragging) {
      const { id, x, y } = this._dragging;
      stored[id] = { ...stored[id], x, y, placed: true };
    }
    this._graphs = this._currentGraphs(roomLayout);
    const heights = new Map<string, number>();
    for (const [id, card] of this._cards) {
      // Measured with its heading state of this pass (a heading's folding differs).
      card.setHeadingLevel(
        headingLevel({
          id,
          type: card.model.type,
          source: card.model.sharedModel.getSource()
        })
      );
      const height = card.isHidden ? 0 : card.measuredHeight();
      if (height > 0) {
        heights.set(id, height);
      }
    }
    const pcGraph = this._graphs.pc_graph;
    this._cardLayout = layoutCards({
      order: this._order,
      pcGraph,
      stored,
      heights
    });
    const hiddenCounts = new Map<string, number>();
    for (const [id, box] of this._cardLayout.boxes) {
      if (box.collapsed && pcGraph[id] !== undefined) {
        hiddenCounts.set(id, membersOf(pcGraph, id).length);
      }
    }
    for (const [id, box] of this._cardLayout.boxes) {
      this._cards.get(id)?.setBox(box, hiddenCounts.get(id) ?? 0);
    }
    if (this.isVisible) {
      this._links.draw(this._cardLayout, this._graphs.np_graph, hiddenCounts);
    }
  }

  /**
   * The room's graphs when it has them, else the notebook's own by the same rule.
   */
  private _currentGraphs(roomLayout: IRoomLayout | undefined): ICanvasGraphs {
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

  /**
   * Change a cell's place for every peer (on this page only without a room).
   */
  private _write(cellId: string, change: Partial<ICellPlacement>): void {
    const box = this._cardLayout.boxes.get(cellId);
    const full: ICellPlacement = {
      x: box?.x ?? 0,
      y: box?.y ?? 0,
      width: box?.width ?? 600,
      height: Math.round(box?.height ?? 120),
      collapsed: box?.collapsed ?? false,
      placed: box?.placed ?? false,
      ...change
    };
    if (this._room) {
      this._room.place(cellId, change, full);
    } else {
      this._restLayout = this._restLayout ?? {
        path: this._context.path,
        file_id: '',
        room: '',
        cells: {},
        np_graph: {},
        pc_graph: {}
      };
      this._restLayout.cells[cellId] = full;
      this._scheduleRelayout();
    }
  }

  private _languageMime(): string | null {
    if (!this._mimeService) {
      return null;
    }
    const info = this._context.model.getMetadata('language_info') as
      ILanguageInfoMetadata | undefined;
    return info ? this._mimeService.getMimeTypeByLanguage(info) : null;
  }

  /**
   * How high code is drawn at zoom 1 (JupyterLab's code font size).
   */
  private _codePx(): number {
    const sample = this._plane.querySelector('.cm-content');
    const size = parseFloat(
      sample
        ? getComputedStyle(sample).fontSize
        : getComputedStyle(this.node).getPropertyValue('--jp-code-font-size')
    );
    return Number.isFinite(size) && size > 0 ? size : 13;
  }

  private _fitOnce(): void {
    if (this._fitted) {
      return;
    }
    this._fitted = true;
    // Two frames: the cards' contents are drawn and measured first.
    requestAnimationFrame(() => requestAnimationFrame(() => this.fit()));
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

  private _context: DocumentRegistry.IContext<INotebookModel>;
  private _queue: QueueService;
  private _queueing: CanvasQueueing;
  private _trans: ITrans;
  private _rendermime: IRenderMimeRegistry;
  private _editorFactory: CodeEditor.Factory;
  private _mimeService: IEditorMimeTypeService | null;
  private _plane: HTMLDivElement;
  private _links: CanvasLinks;
  private _banner: HTMLDivElement;
  private _interaction: CanvasInteraction;
  private _resizeObserver: ResizeObserver;
  private _cards = new Map<string, CanvasCard>();
  private _order: string[] = [];
  private _cardLayout: ILayout = { boxes: new Map(), columns: [], frames: [] };
  private _graphs: ICanvasGraphs = { np_graph: {}, pc_graph: {} };
  private _view: IViewport = { x: 40, y: 40, scale: 1 };
  private _restLayout: ICanvasLayout | null = null;
  private _room: CanvasRoom | null = null;
  private _dragging: { id: string; x: number; y: number } | null = null;
  private _frames = new Map<string, number>();
  private _fitted = false;
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

namespace Private {
  /**
   * Makes the SVG marker ids unique on the page.
   */
  export const ids = { next: 0 };
}
