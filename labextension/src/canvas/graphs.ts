/**
 * A notebook cell as the graphs see it.
 */
export interface IGraphCell {
  id: string;
  type: string;
  source: string;
}

/**
 * The canvas graphs of the contract.
 */
export interface ICanvasGraphs {
  /** Heading cell id → the cells it owns (its children). */
  pc_graph: Record<string, string[]>;
  /** The cells without a parent, chained in notebook order. */
  np_graph: Record<string, string[]>;
}

/**
 * The heading level of a markdown cell (`#` × L on its first line), or 0.
 */
export function headingLevel(cell: IGraphCell): number {
  if (cell.type !== 'markdown') {
    return 0;
  }
  const firstLine = cell.source.replace(/^\s*\n/, '').split('\n', 1)[0] ?? '';
  const match = /^(#{1,6})(\s|$)/.exec(firstLine);
  return match ? match[1].length : 0;
}

/**
 * The graphs of a notebook, by the contract's rule: a heading of level L owns
 * the cells after it up to the next heading of level ≤ L; a deeper heading in
 * that run is one of its children and owns its own run; cells with no parent
 * are chained in order.
 */
export function computeGraphs(cells: readonly IGraphCell[]): ICanvasGraphs {
  const pc: Record<string, string[]> = {};
  const np: Record<string, string[]> = {};
  const open: { id: string; level: number }[] = [];
  let previousTop: string | null = null;
  for (const cell of cells) {
    const level = headingLevel(cell);
    if (level > 0) {
      while (open.length && open[open.length - 1].level >= level) {
        open.pop();
      }
    }
    const parent = open.length ? open[open.length - 1].id : null;
    if (parent !== null) {
      pc[parent].push(cell.id);
    } else {
      if (previousTop !== null) {
        np[previousTop] = [cell.id];
      }
      previousTop = cell.id;
    }
    if (level > 0) {
      pc[cell.id] = [];
      open.push({ id: cell.id, level });
    }
  }
  return { pc_graph: pc, np_graph: np };
}

/**
 * Every cell a heading owns, at any depth, in the order the graph lists them.
 */
export function groupMembers(
  pcGraph: Readonly<Record<string, readonly string[]>>,
  headingId: string
): string[] {
  const members: string[] = [];
  const seen = new Set<string>([headingId]);
  const walk = (id: string) => {
    for (const child of pcGraph[id] ?? []) {
      if (!seen.has(child)) {
        seen.add(child);
        members.push(child);
        walk(child);
      }
    }
  };
  walk(headingId);
  return members;
}
