// Helpers for driving the page, and the `test` every spec uses.
//
// The `test` exported here is Playwright's, plus one automatic check: an
// uncaught error in the page (for example a panic in the hydrated WASM)
// fails the test.

import { test as base, expect, type Locator, type Page, type TestInfo } from '@playwright/test';
import type { Server } from './server';

export { expect };

export const test = base.extend<{ pageErrors: string[] }>({
  pageErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.stack ?? String(err)));
      // A script, style or connection the page's Content Security Policy
      // blocked means the page is partly broken.
      page.on('console', (msg) => {
        if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) errors.push(msg.text());
      });
      await use(errors);
      expect(errors, 'uncaught errors in the page').toEqual([]);
    },
    { auto: true },
  ],
});

/** How long to wait for posts that must arrive (the replay runs at 10-20 posts/s). */
export const ARRIVAL_TIMEOUT = 15_000;
/** How long to wait for the page to reconnect after a restart (backoff up to ~5 s). */
export const RECONNECT_TIMEOUT = 25_000;
/** How long to watch when checking that nothing arrives. */
export const QUIET_MS = 1_500;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Cards that are on screen and not leaving. */
export function cards(page: Page): Locator {
  return page.locator('#tweet-container .tweet:not(.fadeOut)');
}

/** Every card in the list, leaving or not. */
export function allCards(page: Page): Locator {
  return page.locator('#tweet-container .tweet');
}

/** Texts of the cards not leaving, top (newest) first, read in one go. */
export function cardTexts(page: Page): Promise<string[]> {
  return page.locator('#tweet-container .tweet:not(.fadeOut) .text').allTextContents();
}

/** Waits until the page is hydrated and its WebSocket is open. */
export async function waitConnected(page: Page, timeout = 20_000): Promise<void> {
  await expect(page.locator('#connection-state')).toHaveAttribute('data-state', 'connected', { timeout });
}

/** Opens the page and waits for hydration and the WebSocket. */
export async function openApp(page: Page, server: Server): Promise<void> {
  await page.goto(server.url + '/');
  await waitConnected(page);
}

/** Types a search into the box and submits it with Enter. */
export async function submitSearch(page: Page, term: string): Promise<void> {
  const input = page.locator('#searchTerm');
  await input.fill(term);
  await input.press('Enter');
}

/**
 * Submits a search and waits until the server accepted it: the heading shows
 * `shown` (the term as the server understood it; by default `term`).
 */
export async function search(page: Page, term: string, shown: string = term): Promise<void> {
  await submitSearch(page, term);
  await expectExactText(page.locator('#search-term'), shown);
  await expect(page.locator('#search-error')).toHaveText('');
}

/** textContent exactly equal (toHaveText would collapse white space). */
export async function expectExactText(locator: Locator, text: string, timeout?: number): Promise<void> {
  await expect.poll(() => locator.textContent(), { timeout }).toBe(text);
}

/** Waits until at least `n` cards (not leaving) are on screen. */
export async function waitForCards(page: Page, n: number, timeout = ARRIVAL_TIMEOUT): Promise<void> {
  await expect.poll(() => cards(page).count(), { timeout, message: `at least ${n} posts arrive` }).toBeGreaterThanOrEqual(n);
}

/**
 * Watches the list inside the page for `ms` and returns the largest number of
 * cards not leaving seen between two tasks (what a person could ever see).
 */
export function maxCardsDuring(page: Page, ms: number): Promise<number> {
  return page.evaluate(async (duration) => {
    let max = 0;
    const end = performance.now() + duration;
    while (performance.now() < end) {
      const n = document.querySelectorAll('#tweet-container .tweet:not(.fadeOut)').length;
      if (n > max) max = n;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return max;
  }, ms);
}

/** Attaches the server's output to the report of a test that failed. */
export async function attachServerOutput(testInfo: TestInfo, servers: ReadonlyArray<Server | undefined>): Promise<void> {
  if (testInfo.status === testInfo.expectedStatus) return;
  for (const server of servers) {
    if (server) {
      await testInfo.attach(`server output (${server.url})`, { body: server.output(), contentType: 'text/plain' });
    }
  }
}

/** Stops every server (ignoring ones already stopped). */
export async function stopAll(servers: ReadonlyArray<Server | undefined>): Promise<void> {
  await Promise.all(servers.map((s) => s?.stop()));
}

type ArrivalWindow = Window & { __arrivals?: number; __arrivalObserver?: MutationObserver };

/**
 * Starts (or restarts) counting `.tweet` elements added to the page from now
 * on, with a MutationObserver in the page. Read the count with `arrivals`.
 */
export async function trackArrivals(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as ArrivalWindow;
    w.__arrivalObserver?.disconnect();
    w.__arrivals = 0;
    const observer = new MutationObserver((records) => {
      for (const record of records) {
        record.addedNodes.forEach((node) => {
          if (!(node instanceof Element)) return;
          if (node.matches('.tweet')) w.__arrivals = (w.__arrivals ?? 0) + 1;
          else w.__arrivals = (w.__arrivals ?? 0) + node.querySelectorAll('.tweet').length;
        });
      }
    });
    observer.observe(document.body, { childList: true, subtree: true });
    w.__arrivalObserver = observer;
  });
}

/** How many cards were added since `trackArrivals`. */
export function arrivals(page: Page): Promise<number> {
  return page.evaluate(() => (window as ArrivalWindow).__arrivals ?? 0);
}

/**
 * Texts of the cards (not leaving) that arrived since `trackArrivals`, newest
 * first, read in one go: new cards go on top, so these are the top ones.
 */
export function textsSinceTracking(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const added = (window as ArrivalWindow).__arrivals ?? 0;
    const texts = Array.from(document.querySelectorAll('#tweet-container .tweet:not(.fadeOut) .text')).map(
      (el) => el.textContent ?? '',
    );
    return texts.slice(0, Math.min(added, texts.length));
  });
}

/** Waits until at least `n` cards arrived since `trackArrivals`. */
export async function waitForArrivals(page: Page, n: number, timeout = ARRIVAL_TIMEOUT): Promise<void> {
  await expect
    .poll(() => arrivals(page), { timeout, message: `at least ${n} new posts arrive` })
    .toBeGreaterThanOrEqual(n);
}

/** Checks that no card arrives for `ms` milliseconds, and the list stays as it was. */
export async function expectNothingArrives(page: Page, ms = QUIET_MS): Promise<void> {
  const before = await cardTexts(page);
  await trackArrivals(page);
  await sleep(ms);
  expect(await arrivals(page), `no post arrives within ${ms} ms`).toBe(0);
  expect(await cardTexts(page)).toEqual(before);
}
