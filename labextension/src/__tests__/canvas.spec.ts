import { describe, expect, it } from 'vitest';
import {
  chainEdges,
  edgePath,
  groupFrames,
  IRect,
  union
} from '../canvas/geometry';
import { computeGraphs, groupMembers, headingLevel } from '../canvas/graphs';
import { toPlane, toView, zoomAt } from '../canvas/viewport';

const md = (id: string, source: string) => ({ id, type: 'markdown', source });
const code = (id: string) => ({ id, type: 'code', source: 'x = 1' });

describe('computeGraphs', () => {
  it('follows the contract example', () => {
    const graphs = computeGraphs([
      md('A', '# A'),
      code('x'),
      md('B', '## B\ntext'),
      code('y'),
      md('C', '# C'),
      code('z')
    ]);
    expect(graphs.pc_graph).toEqual({ A: ['x', 'B'], B: ['y'], C: ['z'] });
    expect(graphs.np_graph).toEqual({ A: ['C'] });
    expect(groupMembers(graphs.pc_graph, 'A')).toEqual(['x', 'B', 'y']);
  });

  it('chains cells before the first heading and ignores non-headings', () => {
    const graphs = computeGraphs([
      code('a'),
      md('m', 'not #a heading'),
      md('H', '### H'),
      code('b')
    ]);
    expect(graphs.np_graph).toEqual({ a: ['m'], m: ['H'] });
    expect(graphs.pc_graph).toEqual({ H: ['b'] });
    expect(headingLevel(md('h', '\n## two'))).toBe(2);
    expect(headingLevel(md('h', '#no space'))).toBe(0);
    expect(headingLevel(code('c'))).toBe(0);
  });
});

describe('geometry', () => {
  it('draws nested frames around heading groups', () => {
    const rects = new Map<string, IRect>([
      ['A', { x: 0, y: 0, width: 100, height: 20 }],
      ['x', { x: 0, y: 40, width: 100, height: 20 }],
      ['B', { x: 200, y: 0, width: 100, height: 20 }],
      ['y', { x: 200, y: 100, width: 100, height: 50 }]
    ]);
    const frames = groupFrames({ A: ['x', 'B'], B: ['y'] }, rects, 10);
    expect(frames.map(f => f.headingId)).toEqual(['A', 'B']);
    const [a, b] = frames;
    expect(b.rect).toEqual({ x: 190, y: -10, width: 120, height: 170 });
    expect(a.rect).toEqual({ x: -10, y: -20, width: 330, height: 190 });
    expect(a.depth).toBe(1);
    expect(union([])).toBeNull();
  });

  it('survives a cyclic graph', () => {
    const rects = new Map<string, IRect>([
      ['A', { x: 0, y: 0, width: 10, height: 10 }]
    ]);
    expect(groupFrames({ A: ['B'], B: ['A'] }, rects, 0)).toHaveLength(2);
  });

  it('joins chained boxes bottom to top', () => {
    const boxes = new Map<string, IRect>([
      ['A', { x: 0, y: 0, width: 100, height: 50 }],
      ['C', { x: 300, y: 200, width: 50, height: 10 }]
    ]);
    const [edge] = chainEdges({ A: ['C', 'missing'] }, boxes);
    expect(edge).toEqual({
      from: 'A',
      to: 'C',
      x1: 50,
      y1: 50,
      x2: 325,
      y2: 200
    });
    expect(edgePath(edge)).toMatch(/^M 50 50 C /);
  });

  it('joins boxes standing side by side (columns) side to side', () => {
    const boxes = new Map<string, IRect>([
      ['A', { x: 0, y: 0, width: 100, height: 500 }],
      ['C', { x: 180, y: 0, width: 100, height: 200 }]
    ]);
    const [edge] = chainEdges({ A: ['C'] }, boxes);
    expect(edge).toMatchObject({ x1: 100, x2: 180, side: true });
    expect(edge.y1).toBe(edge.y2);
    expect(edgePath(edge)).toMatch(/^M 100 30 C 140 30/);
  });
});

describe('viewport', () => {
  it('keeps the point under the cursor in place while zooming', () => {
    const view = { x: 30, y: -20, scale: 1 };
    const anchor = { x: 200, y: 150 };
    const before = toPlane(view, anchor);
    const zoomed = zoomAt(view, 2, anchor);
    expect(zoomed.scale).toBe(2);
    const after = toPlane(zoomed, anchor);
    expect(after.x).toBeCloseTo(before.x);
    expect(after.y).toBeCloseTo(before.y);
    expect(toView(zoomed, after).x).toBeCloseTo(anchor.x);
    expect(zoomAt(view, 1000, anchor).scale).toBe(3);
  });
});
