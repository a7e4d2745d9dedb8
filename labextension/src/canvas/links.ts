import { chainEdges, edgePath, IFrame, IRect } from './geometry';
import type { ILayout } from './layout';

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * The links of the canvas: the frames of the heading groups and the edges of
 * the `np_graph` chain, drawn in one SVG under the cards.
 */
export class CanvasLinks {
  constructor(markerId: string) {
    this.node = document.createElementNS(SVG_NS, 'svg');
    this.node.classList.add('jp-CanvasView-links');
    this._markerId = markerId;
  }

  /**
   * The SVG element (put it on the plane, before the cards).
   */
  readonly node: SVGSVGElement;

  /**
   * Draw the frames and edges of a layout.
   *
   * @param hiddenCounts - heading id → how many cells its folded group hides.
   */
  draw(
    layout: ILayout,
    npGraph: Readonly<Record<string, readonly string[]>>,
    hiddenCounts: ReadonlyMap<string, number>
  ): void {
    const svg = this.node;
    while (svg.firstChild) {
      svg.removeChild(svg.firstChild);
    }
    const boxes = new Map<string, IRect>();
    for (const [id, box] of layout.boxes) {
      if (!box.hidden) {
        boxes.set(id, box);
      }
    }
    for (const frame of layout.frames) {
      boxes.set(frame.headingId, frame.rect);
    }
    svg.appendChild(this._defs());
    for (const frame of layout.frames) {
      svg.appendChild(frameRect(frame, hiddenCounts.get(frame.headingId) ?? 0));
    }
    for (const edge of chainEdges(npGraph, boxes)) {
      const path = document.createElementNS(SVG_NS, 'path');
      path.classList.add('jp-CanvasView-edge');
      path.dataset.from = edge.from;
      path.dataset.to = edge.to;
      path.setAttribute('d', edgePath(edge));
      path.setAttribute('marker-end', `url(#${this._markerId})`);
      svg.appendChild(path);
    }
  }

  private _defs(): SVGDefsElement {
    const defs = document.createElementNS(SVG_NS, 'defs');
    const marker = document.createElementNS(SVG_NS, 'marker');
    marker.setAttribute('id', this._markerId);
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
    return defs;
  }

  private _markerId: string;
}

function frameRect(frame: IFrame, hidden: number): SVGRectElement {
  const rect = document.createElementNS(SVG_NS, 'rect');
  rect.classList.add('jp-CanvasView-frame');
  rect.classList.toggle('jp-mod-folded', hidden > 0);
  rect.dataset.heading = frame.headingId;
  rect.dataset.depth = `${frame.depth}`;
  rect.setAttribute('x', `${frame.rect.x}`);
  rect.setAttribute('y', `${frame.rect.y}`);
  rect.setAttribute('width', `${frame.rect.width}`);
  rect.setAttribute('height', `${frame.rect.height}`);
  rect.setAttribute('rx', '10');
  return rect;
}
