import { defineConfig } from '@playwright/test';
import * as fs from 'node:fs';

// These machines cannot download Playwright's own browser, so the suite uses
// Debian's Chromium when it is there. CHROMIUM_PATH points at any other
// Chromium; with neither, Playwright falls back to its own browser (for people
// who ran `npx playwright install` on a normal machine).
function chromiumPath(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return fromEnv;
  if (fs.existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  return undefined;
}

const executablePath = chromiumPath();

// No `webServer` entry: every test starts its own server through
// tests/support/server.ts, so that it controls the replay data and can stop
// and restart the server.
export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  // 2-core machines: one browser and one server at a time.
  workers: 1,
  retries: process.env.CI ? 1 : 0,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: 'list',
  use: {
    browserName: 'chromium',
    headless: true,
    trace: 'on-first-retry',
    screenshot: 'only-on-failure',
    launchOptions: {
      ...(executablePath ? { executablePath } : {}),
      args: [
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-gpu',
        '--no-sandbox',
      ],
    },
  },
});
