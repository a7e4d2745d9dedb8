import { expect, test } from '@playwright/test';
import {
  badge,
  cell,
  createNotebook,
  openNotebook,
  outputs,
  queueEntries,
  runWithShiftEnter,
  uniqueName
} from './helpers';

test.describe('Cells run through the server queue', () => {
  test('Shift+Enter queues the cell on the server and shows its outputs', async ({
    page,
    request
  }) => {
    const path = `${uniqueName('shift-enter')}.ipynb`;
    await createNotebook(request, path, [
      { id: 'greet', source: 'print("hello from the server queue")\n6 * 7' }
    ]);
    // Run at once: a cell run while the kernel starts waits for it.
    await openNotebook(page, path, { waitForKernel: false });

    await runWithShiftEnter(page, 0);

    await expect(outputs(page, 0)).toContainText('hello from the server queue');
    await expect(outputs(page, 0)).toContainText('42');
    await expect(cell(page, 0).locator('.jp-InputPrompt')).toContainText('1');
    // It went through POST /api/queue as that cell, on the notebook's kernel.
    const entries = await queueEntries(request, path);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      cell_id: 'greet',
      state: 'done',
      code: 'print("hello from the server queue")\n6 * 7'
    });
  });

  test('three queued cells show running and their places; interrupt and clear queue', async ({
    page,
    request
  }) => {
    const path = `${uniqueName('queued')}.ipynb`;
    await createNotebook(request, path, [
      {
        id: 'slow',
        source:
          'import time\nprint("slow started", flush=True)\ntime.sleep(10)\nprint("slow done")'
      },
      { id: 'second', source: 'print("second ran")' },
      { id: 'third', source: 'print("third ran")' }
    ]);
    await openNotebook(page, path);

    // Shift+Enter three times: run and advance, so three cells are queued.
    await runWithShiftEnter(page, 0);
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.press('Shift+Enter');

    await expect(badge(page, 0)).toHaveText('Running');
    await expect(badge(page, 1)).toHaveText('Queued #1');
    await expect(badge(page, 2)).toHaveText('Queued #2');
    await expect(cell(page, 1)).toHaveClass(/jp-canvas-queued/);

    // "Interrupt cell" cancels the running cell only: the queue goes on.
    // (Once the code runs: a kernel ignores an interrupt before it starts.)
    await expect(outputs(page, 0)).toContainText('slow started');
    await page.locator('[data-command="jupyter-canvas:interrupt"]').click();
    await expect(badge(page, 0)).toContainText('Cancelled');
    await expect(outputs(page, 1)).toContainText('second ran');
    await expect(outputs(page, 2)).toContainText('third ran');
    await expect(badge(page, 1)).toHaveCount(0);
    await expect(badge(page, 2)).toHaveCount(0);
    await expect(outputs(page, 0)).toContainText('KeyboardInterrupt');

    // Queue them again and clear the queue: every one is cancelled, with why.
    await runWithShiftEnter(page, 0);
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.press('Shift+Enter');
    await expect(badge(page, 2)).toHaveText('Queued #2');
    await page.locator('[data-command="jupyter-canvas:clear-queue"]').click();
    for (const index of [0, 1, 2]) {
      await expect(badge(page, index)).toContainText('Cancelled');
    }
    const entries = await queueEntries(request, path);
    const cancelled = entries.filter(e => e.state === 'cancelled');
    expect(cancelled.length).toBeGreaterThanOrEqual(4);
    for (const entry of cancelled) {
      expect(entry.reason).toBeTruthy();
    }
    const reason = cancelled.find(e => e.cell_id === 'third').reason;
    await expect(badge(page, 2)).toContainText(reason);
  });

  test('closing the page while a cell runs loses nothing', async ({
    page,
    context,
    request
  }) => {
    const path = `${uniqueName('close-reopen')}.ipynb`;
    await createNotebook(request, path, [
      {
        id: 'ticker',
        source:
          'import time\nfor i in range(20):\n    print(f"tick {i}", flush=True)\n    time.sleep(1)'
      }
    ]);
    await openNotebook(page, path);
    await runWithShiftEnter(page, 0);
    await expect(outputs(page, 0)).toContainText('tick 1');
    await page.close();

    // Nobody watches for a while; the server keeps running and writing.
    await new Promise(resolve => setTimeout(resolve, 6000));

    const again = await context.newPage();
    await openNotebook(again, path);
    // What was printed meanwhile is there, and the cell still runs.
    await expect(outputs(again, 0)).toContainText('tick 6');
    await expect(badge(again, 0)).toHaveText('Running');
    // It finishes in the reopened page, with every line in order.
    await expect(outputs(again, 0)).toContainText('tick 19', {
      timeout: 40_000
    });
    await expect(badge(again, 0)).toHaveCount(0);
    const text = (await outputs(again, 0).innerText()).trim();
    const ticks = text.split('\n').filter(line => line.startsWith('tick '));
    expect(ticks).toEqual(Array.from({ length: 20 }, (_, i) => `tick ${i}`));
  });
});
