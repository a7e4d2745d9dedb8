import { expect, Locator, Page, test } from '@playwright/test';
import { createNotebook, openNotebook, uniqueName } from './helpers';

const CELLS = [
  {
    id: 'setup',
    source: 'data = [3, 1, 4, 1, 5, 9, 2, 6]\nprint(f"{len(data)} values")'
  },
  {
    id: 'title',
    type: 'markdown' as const,
    source: '# Analysis\nEverything under this heading is one group.'
  },
  { id: 'total', source: 'total = sum(data)\ntotal' },
  { id: 'detail', type: 'markdown' as const, source: '## Details' },
  {
    id: 'table',
    source:
      'from IPython.display import HTML\nHTML("<table><tr><th>min</th><th>max</th></tr>"\n     f"<tr><td>{min(data)}</td><td>{max(data)}</td></tr></table>")'
  }
];

function card(page: Page, cellId: string): Locator {
  return page.locator(
    `.jp-CanvasView .jp-CanvasCard[data-cell-id="${cellId}"]`
  );
}

async function openCanvasOf(page: Page, notebook: string): Promise<Locator> {
  await openNotebook(page, notebook);
  await page.locator('[data-command="jupyter-canvas:open-canvas"]').click();
  const view = page.locator('.jp-CanvasPanel .jp-CanvasView');
  await expect(view).toBeVisible();
  await expect(view.locator('.jp-CanvasCard')).toHaveCount(CELLS.length);
  return view;
}

async function drag(
  page: Page,
  target: Locator,
  dx: number,
  dy: number
): Promise<void> {
  const header = target.locator('.jp-CanvasCard-header');
  const box = (await header.boundingBox())!;
  const x = box.x + 40;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + dx / 2, y + dy / 2, { steps: 5 });
  await page.mouse.move(x + dx, y + dy, { steps: 5 });
  await page.mouse.up();
}

async function position(target: Locator): Promise<{ x: number; y: number }> {
  return {
    x: Number(await target.getAttribute('data-x')),
    y: Number(await target.getAttribute('data-y'))
  };
}

test('open as canvas, run a card, drag it: every peer and the file see the move', async ({
  page,
  context,
  request
}) => {
  const notebook = `${uniqueName('canvas')}.ipynb`;
  await createNotebook(request, notebook, CELLS);
  const view = await openCanvasOf(page, notebook);

  // Heading groups are framed (# Analysis holds ## Details), the chain has an edge.
  await expect(view.locator('.jp-CanvasView-frame')).toHaveCount(2);
  await expect(
    view.locator('.jp-CanvasView-edge[data-from="setup"][data-to="title"]')
  ).toHaveCount(1);

  // Run the group of the heading from its card: outputs are rendered in the cards.
  await card(page, 'setup').locator('.jp-CanvasCard-run').click();
  await expect(card(page, 'setup').locator('.jp-OutputArea')).toContainText(
    '8 values'
  );
  await card(page, 'title').locator('.jp-CanvasCard-runGroup').click();
  await expect(card(page, 'total').locator('.jp-OutputArea')).toContainText(
    '31'
  );
  await expect(
    card(page, 'table').locator('.jp-OutputArea table')
  ).toBeVisible();

  // Drag a card: the move goes through the canvas room.
  const scale = Number(await view.getAttribute('data-scale'));
  const before = await position(card(page, 'total'));
  await drag(page, card(page, 'total'), 240, 60);
  const expected = {
    x: before.x + 240 / scale,
    y: before.y + 60 / scale
  };
  const after = await position(card(page, 'total'));
  // Dropped on the 20 px grid, next to where the pointer left it.
  expect(after.x % 20).toBe(0);
  expect(after.y % 20).toBe(0);
  expect(Math.abs(after.x - expected.x)).toBeLessThanOrEqual(12);
  expect(Math.abs(after.y - expected.y)).toBeLessThanOrEqual(12);

  // A second page sees the card where it was dropped.
  const peer = await context.newPage();
  await openCanvasOf(peer, notebook);
  await expect(card(peer, 'total')).toHaveAttribute('data-x', `${after.x}`);
  await expect(card(peer, 'total')).toHaveAttribute('data-y', `${after.y}`);

  // ...and a move there shows here, live.
  const setupBefore = await position(card(peer, 'setup'));
  await drag(peer, card(peer, 'setup'), -80, 40);
  const setupAfter = await position(card(peer, 'setup'));
  expect(setupAfter).not.toEqual(setupBefore);
  await expect(card(page, 'setup')).toHaveAttribute(
    'data-x',
    `${setupAfter.x}`
  );
  await expect(card(page, 'setup')).toHaveAttribute(
    'data-y',
    `${setupAfter.y}`
  );

  // The position reaches the cell's metadata in the file on disk.
  await expect
    .poll(
      async () => {
        const model = await (
          await request.get(`api/contents/${notebook}?content=1`)
        ).json();
        const cell = model.content.cells.find((c: any) => c.id === 'total');
        const placement = cell?.metadata?.jupyter_canvas ?? {};
        return [placement.x, placement.y];
      },
      { timeout: 30_000 }
    )
    .toEqual([after.x, after.y]);

  // Editing a card's source edits the notebook (the same shared text).
  const editor = card(page, 'total').locator('.cm-content');
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type(' * 2');
  const notebookCell = page.locator('.jp-NotebookPanel .jp-Cell').nth(2);
  await expect(notebookCell.locator('.cm-content')).toContainText('total * 2');
  await expect(card(page, 'total').locator('.jp-OutputArea')).toContainText(
    '31'
  );
  await expect(notebookCell.locator('.jp-OutputArea')).toContainText('31');
});
