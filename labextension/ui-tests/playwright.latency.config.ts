import * as fs from 'fs';
import * as path from 'path';
import { defineConfig } from '@playwright/test';
import base from './playwright.config';

/**
 * The Shift-Enter latency benchmark (benchmarks/latency.spec.ts): the test
 * server of the browser tests, and beside it a stock JupyterLab (no
 * jupyter_canvas) on its own port and configuration directory, whose page
 * config disables the jupyter-canvas JupyterLab extension. Run it with
 * `jlpm playwright test --config playwright.latency.config.ts` (the same
 * environment variables as tests/test_ui.py, plus JUPYTER_CANVAS_UI_STOCK_PORT).
 */
const python = process.env.JUPYTER_CANVAS_PYTHON ?? 'python3';
const serverLog =
  process.env.JUPYTER_CANVAS_UI_SERVER_LOG ?? 'test-results-server.log';
const stockPort = Number(process.env.JUPYTER_CANVAS_UI_STOCK_PORT ?? 8889);
const stockConfigDir = path.resolve(
  `${process.env.JUPYTER_CONFIG_DIR ?? 'test-results-config'}-stock`
);
fs.mkdirSync(path.join(stockConfigDir, 'labconfig'), { recursive: true });
fs.writeFileSync(
  path.join(stockConfigDir, 'labconfig', 'page_config.json'),
  JSON.stringify({ disabledExtensions: { 'jupyter-canvas': true } })
);

export default defineConfig({
  ...base,
  testDir: './benchmarks',
  webServer: [
    ...(Array.isArray(base.webServer)
      ? base.webServer
      : base.webServer
        ? [base.webServer]
        : []),
    {
      command: `"${python}" -m jupyter lab --config jupyter_server_stock_config.py > "${serverLog}.stock" 2>&1`,
      url: `http://127.0.0.1:${stockPort}/api`,
      env: { ...process.env, JUPYTER_CONFIG_DIR: stockConfigDir } as Record<
        string,
        string
      >,
      timeout: 120_000,
      reuseExistingServer: false
    }
  ]
});
