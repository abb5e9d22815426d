// `npm run e2e`: builds nothing of the UI (run `npm run build` first), starts a private stack
// (stack.mjs), drives Debian's Chromium through the flows (flows.mjs), saves screenshots in
// e2e/screenshots/, and stops everything it started, also on failure.
// Environment: AXONGATE_E2E_SKIP_CARGO=1 skips `cargo build`; CHROMIUM_PATH overrides /usr/bin/chromium.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startStack, UI_DIR } from './stack.mjs';
import { runFlows } from './flows.mjs';

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(path.join(UI_DIR, 'dist', 'index.html'))) {
  console.error('[e2e] ui/dist is missing: run `npm run build` first');
  process.exit(2);
}
if (!existsSync(executablePath)) {
  console.error(`[e2e] ${executablePath} is missing: apt-get install -y chromium`);
  process.exit(2);
}

// A failed step's first line, and what Playwright was waiting for (its call log names the
// locator), so a CI excerpt says which action timed out.
const summarize = (message) => {
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const waiting = lines.filter((line) => /^- (waiting for|locator resolved|element is|retrying)/.test(line)).slice(0, 4);
  return [lines[0], ...waiting].join(' | ');
};

let stack;
let context;
const userDataDir = mkdtempSync(path.join(tmpdir(), 'axongate-e2e-chromium-'));
let exitCode = 1;
const shutdown = async () => {
  await context?.close().catch(() => undefined);
  rmSync(userDataDir, { recursive: true, force: true });
  await stack?.stop();
};
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    shutdown().finally(() => process.exit(130));
  });
}

try {
  stack = await startStack({ build: process.env.AXONGATE_E2E_SKIP_CARGO !== '1' });
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1440, height: 900 },
    locale: 'en-US',
    acceptDownloads: true,
  });
  const screenshotDir = path.join(UI_DIR, 'e2e', 'screenshots');
  rmSync(screenshotDir, { recursive: true, force: true });
  const results = await runFlows({ context, stack, screenshotDir });
  const failed = results.filter((result) => !result.ok);
  console.log('\n[e2e] results:');
  for (const result of results)
    console.log(`  ${result.ok ? 'PASS' : 'FAIL'}  ${result.name}${result.ok ? '' : `: ${summarize(result.error)}`}`);
  console.log(`[e2e] logs in ${stack.runDir}`);
  console.log(`e2e: ${results.length - failed.length} passed, ${failed.length} failed`);
  exitCode = failed.length === 0 && results.length > 0 ? 0 : 1;
} catch (error) {
  console.error(`[e2e] ${error.stack ?? error.message}`);
  if (stack) console.error(`[e2e] service logs in ${stack.runDir}`);
} finally {
  await shutdown();
}
process.exit(exitCode);
