/**
 * How the plane is shown: a plane point `p` is drawn at `p * scale + (x, y)`.
 */
export interface IViewport {
  x: number;
  y: number;
  scale: number;
}

/**
 * A point (screen pixels relative to the view, or plane units).
 */
export interface IPoint {
  x: number;
  y: number;
}

/**
 * The zoom limits.
 */
export const MIN_SCALE = 0.1;
export const MAX_SCALE = 3;

/**
 * The plane point under a view point.
 */
export function toPlane(view: IViewport, point: IPoint): IPoint {
  return {
    x: (point.x - view.x) / view.scale,
    y: (point.y - view.y) / view.scale
  };
}

/**
 * The view point where a plane point is drawn.
 */
export function toView(view: IViewport, point: IPoint): IPoint {
  return { x: point.x * view.scale + view.x, y: point.y * view.scale + view.y };
}

/**
 * Zoom by `factor` keeping the plane point under `anchor` (a view point) in place.
 */
export function zoomAt(
  view: IViewport,
  factor: number,
  anchor: IPoint,
  min = MIN_SCALE,
  max = MAX_SCALE
): IViewport {
  const scale = Math.min(max, Math.max(min, view.scale * factor));
  const fixed = toPlane(view, anchor);
  return {
    scale,
    x: anchor.x - fixed.x * scale,
    y: anchor.y - fixed.y * scale
  };
}

/**
 * Move the view by a drag of (dx, dy) view pixels.
 */
export function panBy(view: IViewport, dx: number, dy: number): IViewport {
  return { ...view, x: view.x + dx, y: view.y + dy };
}

/**
 * The CSS transform of the plane for a viewport.
 */
export function planeTransform(view: IViewport): string {
  return `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
}
