import type { CanvasCard } from './card';
import { Direction, ILayout, neighbour, snap } from './layout';
import { IViewport, panBy, zoomAt } from './viewport';

/**
 * How often (ms) a card being dragged is written to the room, so peers see it move.
 */
const DRAG_WRITE_INTERVAL = 80;

/**
 * What the interaction code asks of the canvas widget.
 */
export interface IInteractionHost {
  /** The view's node (focusable; the plane is inside). */
  readonly node: HTMLElement;
  /** Pan and zoom. */
  viewport: IViewport;
  /** The current layout. */
  readonly currentLayout: ILayout;
  /** The card of a cell. */
  card(cellId: string): CanvasCard | undefined;
  /** Draw a card being dragged at (x, y), whatever the layout says (null: no drag). */
  setDragging(drag: { id: string; x: number; y: number } | null): void;
  /** Store a place the user chose, for every peer. */
  place(cellId: string, x: number, y: number): void;
  /** Run a card (code) or render it (markdown). */
  run(cellId: string): void;
}

const ARROWS: Record<string, Direction> = {
  ArrowUp: 'up',
  ArrowDown: 'down',
  ArrowLeft: 'left',
  ArrowRight: 'right'
};

/**
 * The pointer and keyboard handling of the canvas: pan (drag the background,
 * or hold space and drag anywhere), zoom at the cursor (Ctrl or Cmd + wheel),
 * drag cards by their header (the dragged card comes to the front and snaps to
 * the grid), select cards with the mouse or the arrow keys, run the selected
 * card with Shift-Enter, edit it with Enter, leave its editor with Escape.
 */
export class CanvasInteraction {
  constructor(private readonly _host: IInteractionHost) {}

  /**
   * The selected card's cell id.
   */
  get selected(): string | null {
    return this._selected;
  }

  /**
   * Start listening (the view is attached).
   */
  attach(): void {
    const node = this._host.node;
    node.addEventListener('pointerdown', this._onPointerDown, true);
    node.addEventListener('wheel', this._onWheel, { passive: false });
    node.addEventListener('keydown', this._onKeyDown, true);
    node.addEventListener('keyup', this._onKeyUp);
    node.addEventListener('blur', this._onBlur);
  }

  /**
   * Stop listening (the view is detached).
   */
  detach(): void {
    const node = this._host.node;
    node.removeEventListener('pointerdown', this._onPointerDown, true);
    node.removeEventListener('wheel', this._onWheel);
    node.removeEventListener('keydown', this._onKeyDown, true);
    node.removeEventListener('keyup', this._onKeyUp);
    node.removeEventListener('blur', this._onBlur);
    this._setSpace(false);
  }

  /**
   * Select a card (null: none) and bring it into view.
   */
  select(cellId: string | null, reveal = true): void {
    if (this._selected !== cellId) {
      if (this._selected) {
        this._host.card(this._selected)?.removeClass('jp-mod-selected');
      }
      this._selected = cellId;
    }
    const card = cellId ? this._host.card(cellId) : undefined;
    card?.addClass('jp-mod-selected');
    if (cellId && reveal) {
      this._reveal(cellId);
    }
  }

  /**
   * Drag a card by its header: it comes to the front, follows the pointer on
   * the 20 px grid, and its place is stored (as placed by the user) on drop.
   */
  startDrag(card: CanvasCard, event: PointerEvent): void {
    const box = this._host.currentLayout.boxes.get(card.cellId);
    if (!box || this._space) {
      return;
    }
    event.preventDefault();
    this.select(card.cellId, false);
    this._host.node.focus();
    const header = card.header;
    header.setPointerCapture(event.pointerId);
    card.addClass('jp-mod-dragging');
    card.node.style.zIndex = `${++this._top}`;
    const start = { x: event.clientX, y: event.clientY };
    let last = 0;
    let moved = false;
    const at = (e: PointerEvent) => {
      const scale = this._host.viewport.scale;
      return {
        x: snap(box.x + (e.clientX - start.x) / scale),
        y: snap(box.y + (e.clientY - start.y) / scale)
      };
    };
    const onMove = (e: PointerEvent) => {
      if (e.pointerId !== event.pointerId) {
        return;
      }
      moved = true;
      const point = at(e);
      this._host.setDragging({ id: card.cellId, ...point });
      const now = Date.now();
      if (now - last >= DRAG_WRITE_INTERVAL) {
        last = now;
        this._host.place(card.cellId, point.x, point.y);
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
      if (moved) {
        const point = at(e);
        this._host.place(card.cellId, point.x, point.y);
      }
      this._host.setDragging(null);
    };
    header.addEventListener('pointermove', onMove);
    header.addEventListener('pointerup', onUp);
    header.addEventListener('pointercancel', onUp);
  }

  private _pan(event: PointerEvent): void {
    event.preventDefault();
    event.stopPropagation();
    const node = this._host.node;
    node.focus();
    node.setPointerCapture(event.pointerId);
    node.classList.add('jp-mod-panning');
    let last = { x: event.clientX, y: event.clientY };
    const onMove = (e: PointerEvent) => {
      this._host.viewport = panBy(
        this._host.viewport,
        e.clientX - last.x,
        e.clientY - last.y
      );
      last = { x: e.clientX, y: e.clientY };
    };
    const onUp = () => {
      node.classList.remove('jp-mod-panning');
      node.removeEventListener('pointermove', onMove);
      node.removeEventListener('pointerup', onUp);
      node.removeEventListener('pointercancel', onUp);
    };
    node.addEventListener('pointermove', onMove);
    node.addEventListener('pointerup', onUp);
    node.addEventListener('pointercancel', onUp);
  }

  private _onPointerDown = (event: PointerEvent): void => {
    const target = event.target as Element;
    const cardNode = target.closest('.jp-CanvasCard') as HTMLElement | null;
    if (this._space || event.button === 1) {
      this._pan(event);
      return;
    }
    if (event.button !== 0) {
      return;
    }
    if (!cardNode) {
      this.select(null);
      this._pan(event);
      return;
    }
    const id = cardNode.dataset.cellId;
    if (id) {
      this.select(id, false);
    }
  };

  private _onWheel = (event: WheelEvent): void => {
    event.preventDefault();
    const view = this._host.viewport;
    if (event.ctrlKey || event.metaKey) {
      const rect = this._host.node.getBoundingClientRect();
      this._host.viewport = zoomAt(view, Math.exp(-event.deltaY * 0.002), {
        x: event.clientX - rect.left,
        y: event.clientY - rect.top
      });
    } else {
      this._host.viewport = panBy(view, -event.deltaX, -event.deltaY);
    }
  };

  private _onKeyDown = (event: KeyboardEvent): void => {
    const target = event.target as HTMLElement;
    const editing = isEditable(target);
    if (editing) {
      if (event.key === 'Escape') {
        // Leave the editor: the card stays selected for the arrow keys.
        const id = (target.closest('.jp-CanvasCard') as HTMLElement | null)
          ?.dataset.cellId;
        this._host.node.focus();
        if (id) {
          this.select(id, false);
        }
        event.preventDefault();
      }
      return;
    }
    if (event.key === ' ' && !event.repeat) {
      this._setSpace(true);
      event.preventDefault();
      return;
    }
    const direction = ARROWS[event.key];
    if (direction && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      event.stopPropagation();
      const boxes = this._host.currentLayout.boxes;
      const next = this._selected
        ? neighbour(boxes, this._selected, direction)
        : firstCard(this._host.currentLayout);
      if (next) {
        this.select(next);
      }
      return;
    }
    if (event.key === 'Enter' && this._selected) {
      event.preventDefault();
      event.stopPropagation();
      if (event.shiftKey) {
        this._host.run(this._selected);
      } else {
        this._host.card(this._selected)?.edit();
      }
    }
  };

  private _onKeyUp = (event: KeyboardEvent): void => {
    if (event.key === ' ') {
      this._setSpace(false);
    }
  };

  private _onBlur = (): void => {
    this._setSpace(false);
  };

  private _setSpace(held: boolean): void {
    this._space = held;
    this._host.node.classList.toggle('jp-mod-spacePan', held);
  }

  /**
   * Pan the least that shows the card (its top-left first when it is larger than the view).
   */
  private _reveal(cellId: string): void {
    const box = this._host.currentLayout.boxes.get(cellId);
    const rect = this._host.node.getBoundingClientRect();
    if (!box || rect.width < 10 || rect.height < 10) {
      return;
    }
    const view = this._host.viewport;
    const margin = 24;
    const left = box.x * view.scale + view.x;
    const top = box.y * view.scale + view.y;
    const right = left + box.width * view.scale;
    const bottom = top + box.height * view.scale;
    let dx = 0;
    let dy = 0;
    if (right > rect.width - margin) {
      dx = rect.width - margin - right;
    }
    if (left + dx < margin) {
      dx = margin - left;
    }
    if (bottom > rect.height - margin) {
      dy = rect.height - margin - bottom;
    }
    if (top + dy < margin) {
      dy = margin - top;
    }
    if (dx || dy) {
      this._host.viewport = panBy(view, dx, dy);
    }
  }

  private _selected: string | null = null;
  private _space = false;
  private _top = 1;
}

/**
 * The top-left visible card.
 */
function firstCard(layout: ILayout): string | null {
  let best: string | null = null;
  let score = Infinity;
  for (const box of layout.boxes.values()) {
    if (!box.hidden && box.x + box.y < score) {
      score = box.x + box.y;
      best = box.id;
    }
  }
  return best;
}

function isEditable(target: HTMLElement): boolean {
  return (
    target.isContentEditable ||
    target.closest('input, textarea, select, .cm-editor') !== null
  );
}
