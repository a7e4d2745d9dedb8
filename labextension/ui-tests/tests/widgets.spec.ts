import { expect, test } from '@playwright/test';
import {
  cell,
  createNotebook,
  openNotebook,
  queueEntries,
  runWithShiftEnter,
  uniqueName
} from './helpers';

test.describe('ipywidgets in cells the server runs', () => {
  test('live widgets follow, and an Output widget shows what the server captured', async ({
    page,
    request
  }) => {
    const path = `${uniqueName('widgets')}.ipynb`;
    await createNotebook(request, path, [
      {
        id: 'make',
        source:
          'import ipywidgets as widgets\nout = widgets.Output()\nslider = widgets.IntSlider(3)\ndisplay(out, slider)'
      },
      {
        id: 'fill',
        source:
          'with out:\n    print("captured by the server")\nslider.value = 9'
      }
    ]);
    await openNotebook(page, path);
    // A cell's own output area (an Output widget holds another one inside).
    const area = (index: number) =>
      cell(page, index).locator('.jp-Cell-outputArea');

    await runWithShiftEnter(page, 0);
    // The page's widget manager renders the widgets the server-run cell made.
    await expect(area(0).locator('.widget-slider')).toBeVisible();

    await runWithShiftEnter(page, 1);
    // What `with out:` printed went into the widget (the kernel echoed the server's
    // update to the page), not into the cell that ran it; the slider follows the kernel.
    await expect(area(0)).toContainText('captured by the server');
    await expect(area(0).locator('.widget-readout')).toHaveText('9');
    const entries = await queueEntries(request, path);
    const fill = entries.find(e => e.cell_id === 'fill');
    expect(fill?.state).toBe('done');
    await expect(area(1)).not.toContainText('captured by the server');
  });
});
