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

  test('queued cells show their places; cancel one cell, the stock interrupt, clear the queue; reasons by display name', async ({
    page,
    request
  }) => {
    const path = `${uniqueName('queued')}.ipynb`;
    await createNotebook(request, path, [
      {
        id: 'slow',
        source:
          'import time\nprint("slow started", flush=True)\ntime.sleep(20)\nprint("slow done")'
      },
      { id: 'second', source: 'print("second ran")' },
      { id: 'third', source: 'print("third ran")' }
    ]);
    await openNotebook(page, path);
    // Who this page's user is (an anonymous user has a display name too).
    const me = (await (await page.request.get('api/me')).json()).identity;
    expect(me.display_name).toBeTruthy();

    const queueThree = async () => {
      // Shift+Enter three times: run and advance, so three cells are queued.
      await runWithShiftEnter(page, 0);
      await page.keyboard.press('Shift+Enter');
      await page.keyboard.press('Shift+Enter');
      await expect(badge(page, 0)).toContainText('Running');
      await expect(badge(page, 1)).toContainText('Queued #1');
      await expect(badge(page, 2)).toContainText('Queued #2');
      // A kernel ignores an interrupt before the code runs: wait for it.
      await expect(outputs(page, 0)).toContainText('slow started');
    };

    // 1. Cancel one queued cell from its badge: only that one.
    await queueThree();
    await expect(cell(page, 1)).toHaveClass(/jp-canvas-queued/);
    await badge(page, 2).locator('.jp-CanvasQueueBadge-cancel').click();
    await expect(badge(page, 2)).toContainText(
      `Cancelled: cancelled by ${me.display_name}`
    );
    await expect(badge(page, 2)).not.toContainText(me.username);
    await expect(badge(page, 1)).toContainText('Queued #1');

    // 2. JupyterLab's own interrupt keeps its meaning: the kernel is
    // interrupted, the running cell fails, the queue behind it stops.
    await page
      .locator(
        '.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]'
      )
      .click();
    await expect(outputs(page, 0)).toContainText('KeyboardInterrupt');
    await expect(badge(page, 1)).toContainText(
      /Cancelled: an earlier cell failed: KeyboardInterrupt in cell \[\d+\]/
    );
    // No second interrupt button in the toolbar.
    await expect(
      page.locator(
        '.jp-NotebookPanel-toolbar [data-command="jupyter-canvas:interrupt"]'
      )
    ).toHaveCount(0);
    const stopped = (await queueEntries(request, path)).find(
      e => e.cell_id === 'second' && e.state === 'cancelled'
    );
    const failed = (await queueEntries(request, path)).find(
      e => e.cell_id === 'slow' && e.state === 'error'
    );
    expect(stopped.caused_by).toBe(failed.id);
    expect(stopped.reason).not.toContain(failed.id);

    // 3. Cancel the running cell only (its context menu): the queue goes on.
    await queueThree();
    await cell(page, 0).locator('.jp-InputPrompt').click({ button: 'right' });
    await page
      .locator('.lm-Menu-item[data-command="jupyter-canvas:cancel-cell"]')
      .click();
    await expect(badge(page, 0)).toContainText('Cancelled');
    await expect(outputs(page, 1)).toContainText('second ran');
    await expect(outputs(page, 2)).toContainText('third ran');
    await expect(badge(page, 1)).toHaveCount(0);
    await expect(badge(page, 2)).toHaveCount(0);

    // 4. Clear the queue: every one is cancelled, with why, by display name.
    await queueThree();
    await page.locator('[data-command="jupyter-canvas:clear-queue"]').click();
    for (const index of [0, 1, 2]) {
      await expect(badge(page, index)).toContainText(
        `queue cleared by ${me.display_name}`
      );
    }
    const entries = await queueEntries(request, path);
    const cancelled = entries.filter(e => e.state === 'cancelled');
    expect(cancelled.length).toBeGreaterThanOrEqual(5);
    for (const entry of cancelled) {
      expect(entry.reason).toBeTruthy();
      expect(entry.reason).not.toContain(me.username);
    }
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
