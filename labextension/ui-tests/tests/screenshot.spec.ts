import * as fs from 'fs';
import * as path from 'path';
import { expect, test } from '@playwright/test';
import { createNotebook, execute, openNotebook, uniqueName } from './helpers';

const SHOTS = process.env.JUPYTER_CANVAS_SCREENSHOT_DIR;

/**
 * The screenshot of the README (docs/screenshots/canvas.png). It only runs when
 * asked: `JUPYTER_CANVAS_SCREENSHOT_DIR=../../docs/screenshots jlpm playwright
 * test screenshot`.
 */
test('the canvas view, for the README', async ({ page, request }) => {
  test.skip(
    !SHOTS,
    'set JUPYTER_CANVAS_SCREENSHOT_DIR to write the screenshot'
  );
  const notebook = `${uniqueName('analysis')}.ipynb`;
  await createNotebook(request, notebook, [
    {
      id: 'load',
      source:
        'sales = {"north": 120, "south": 95, "east": 143, "west": 88}\nprint(f"{len(sales)} regions, {sum(sales.values())} units")'
    },
    {
      id: 'report',
      type: 'markdown',
      source: '# Report\nEvery cell under this heading is one group.'
    },
    {
      id: 'best',
      source: 'best = max(sales, key=sales.get)\nbest, sales[best]'
    },
    { id: 'details', type: 'markdown', source: '## Details' },
    {
      id: 'table',
      source:
        'from IPython.display import HTML\nrows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in sales.items())\nHTML(f"<table><tr><th>region</th><th>units</th></tr>{rows}</table>")'
    },
    {
      id: 'share',
      source:
        'for region, units in sorted(sales.items(), key=lambda kv: -kv[1]):\n    print(f"{region:>6} {units / sum(sales.values()):6.1%}")'
    }
  ]);
  const placed = {
    load: { x: 0, y: 0, width: 460, height: 110 },
    report: { x: 0, y: 200, width: 460, height: 120 },
    best: { x: 0, y: 370, width: 460, height: 110 },
    details: { x: 540, y: 200, width: 420, height: 80 },
    table: { x: 540, y: 320, width: 420, height: 240 },
    share: { x: 540, y: 610, width: 420, height: 170 }
  };
  const patched = await request.patch(`api/canvas/layout/${notebook}`, {
    data: { cells: placed }
  });
  expect(patched.ok(), await patched.text()).toBeTruthy();

  await page.setViewportSize({ width: 1280, height: 820 });
  await openNotebook(page, notebook);
  await page.locator('[data-command="jupyter-canvas:open-canvas"]').click();
  const view = page.locator('.jp-CanvasPanel .jp-CanvasView');
  await expect(view.locator('.jp-CanvasCard')).toHaveCount(6);
  await execute(page, 'application:toggle-left-area');
  await execute(page, 'application:set-mode', { mode: 'single-document' });

  await page
    .locator(
      '.jp-CanvasPanel [data-jp-item-name="run-all"] .jp-ToolbarButtonComponent'
    )
    .click();
  await expect(
    view.locator('.jp-CanvasCard[data-cell-id="share"] .jp-OutputArea')
  ).toContainText('north');
  await expect(
    view.locator('.jp-CanvasCard[data-cell-id="table"] .jp-OutputArea table')
  ).toBeVisible();
  await page.addStyleTag({
    content: '.Toastify { display: none !important; }'
  });
  await page
    .locator(
      '.jp-CanvasPanel [data-jp-item-name="fit"] .jp-ToolbarButtonComponent'
    )
    .click();
  await page.waitForTimeout(800);
  fs.mkdirSync(SHOTS!, { recursive: true });
  await page
    .locator('.jp-CanvasPanel')
    .screenshot({ path: path.join(SHOTS!, 'canvas.png') });
});
