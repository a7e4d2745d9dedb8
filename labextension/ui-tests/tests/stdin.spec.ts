import { expect, Page, test } from '@playwright/test';
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

/**
 * The stdin box JupyterLab shows in a cell's output area.
 */
function stdinBox(page: Page, index: number) {
  return cell(page, index).locator('.jp-OutputArea .jp-Stdin');
}

/**
 * The notebook as saved on disk (through the contents API).
 */
async function savedCell(page: Page, path: string, id: string): Promise<any> {
  const response = await page.request.get(`api/contents/${path}?content=1`);
  expect(response.ok()).toBeTruthy();
  const model = await response.json();
  return model.content.cells.find((c: any) => c.id === id);
}

test.describe('input() through the server queue', () => {
  test('JupyterLab’s stdin box answers three input() calls with Enter; the echo is saved', async ({
    page,
    request
  }) => {
    const path = `${uniqueName('stdin')}.ipynb`;
    await createNotebook(request, path, [
      {
        id: 'ask',
        source: [
          'import getpass',
          'name = input("name? ")',
          'secret = getpass.getpass("secret? ")',
          'city = input("city? ")',
          'print(f"{name} from {city}, {len(secret)} characters")'
        ].join('\n')
      },
      { id: 'after', source: 'print("after ran")' }
    ]);
    await openNotebook(page, path);
    await runWithShiftEnter(page, 0);
    await page.keyboard.press('Shift+Enter'); // the next cell waits in the queue

    const answers = [
      { prompt: 'name? ', value: 'Ada', password: false },
      { prompt: 'secret? ', value: 's3cret', password: true },
      { prompt: 'city? ', value: 'Paris', password: false }
    ];
    for (const answer of answers) {
      const box = stdinBox(page, 0);
      await expect(box).toHaveCount(1);
      await expect(box.locator('.jp-Stdin-prompt')).toHaveText(
        answer.prompt.trim()
      );
      await expect(badge(page, 0)).toContainText('Waiting for input');
      const field = box.locator('input');
      // Masked for getpass(), as stock masks it.
      expect((await field.getAttribute('type')) === 'password').toBe(
        answer.password
      );
      await expect(field).toBeFocused();
      // The cell's hover toolbar never covers the box: what is under the
      // middle of the field, with the pointer on the cell, is the field.
      await cell(page, 0).hover();
      const onTop = await field.evaluate(node => {
        const box = node.getBoundingClientRect();
        const hit = document.elementFromPoint(
          box.left + box.width / 2,
          box.top + box.height / 2
        );
        return hit === node;
      });
      expect(onTop).toBe(true);
      await field.click();
      if (
        answer.prompt === 'name? ' &&
        process.env.JUPYTER_CANVAS_SCREENSHOT_DIR
      ) {
        // The README's picture of an input() (docs/screenshots/stdin.png).
        await page.keyboard.type('Ada');
        await cell(page, 0).screenshot({
          path: `${process.env.JUPYTER_CANVAS_SCREENSHOT_DIR}/stdin.png`
        });
        await field.fill('');
      }
      await page.keyboard.type(answer.value);
      await page.keyboard.press('Enter');
    }

    await expect(outputs(page, 0)).toContainText(
      'Ada from Paris, 6 characters'
    );
    await expect(stdinBox(page, 0)).toHaveCount(0);
    await expect(outputs(page, 1)).toContainText('after ran');
    await expect(badge(page, 0)).toHaveCount(0);
    // The echo (written by the server, as JupyterLab writes it) shows once.
    const text = await outputs(page, 0).innerText();
    expect(text.split('Ada').length - 1).toBe(2); // the echo and the print
    expect(text).not.toContain('s3cret');

    // On disk: the echoes as stdin stream outputs, the password masked.
    await expect
      .poll(
        async () => {
          const saved = await savedCell(page, path, 'ask');
          return (saved?.outputs ?? [])
            .filter(
              (o: any) => o.output_type === 'stream' && o.name === 'stdin'
            )
            .map((o: any) => (Array.isArray(o.text) ? o.text.join('') : o.text))
            .join('');
        },
        { timeout: 30_000 }
      )
      .toMatch(/name\? +Ada\n[\s\S]*secret\? +[^\n]*\n[\s\S]*city\? +Paris\n/);
    const saved = await savedCell(page, path, 'ask');
    expect(JSON.stringify(saved.outputs)).not.toContain('s3cret');
    const [entry] = (await queueEntries(request, path)).filter(
      e => e.cell_id === 'ask'
    );
    expect(entry.state).toBe('done');
  });

  test('the box comes back on reload and in a second window while the entry waits', async ({
    page,
    context,
    request
  }) => {
    const path = `${uniqueName('stdin-reload')}.ipynb`;
    await createNotebook(request, path, [
      { id: 'ask', source: 'answer = input("colour? ")\nprint("got", answer)' }
    ]);
    await openNotebook(page, path);
    await runWithShiftEnter(page, 0);
    await expect(stdinBox(page, 0)).toHaveCount(1);

    // A second window on the same notebook shows the same question.
    const other = await context.newPage();
    await openNotebook(other, path);
    await expect(stdinBox(other, 0)).toHaveCount(1);
    await expect(badge(other, 0)).toContainText('Waiting for input');

    // Reloaded, the first window shows it again.
    await page.reload();
    await expect(stdinBox(page, 0)).toHaveCount(1, { timeout: 60_000 });

    // Answered in the second window: both windows lose the box.
    await stdinBox(other, 0).locator('input').click();
    await other.keyboard.type('teal');
    await other.keyboard.press('Enter');
    await expect(outputs(other, 0)).toContainText('got teal');
    await expect(outputs(page, 0)).toContainText('got teal');
    await expect(stdinBox(page, 0)).toHaveCount(0);
    await expect(stdinBox(other, 0)).toHaveCount(0);
  });
});
