// Columns, deep links, the address and the title (docs/protocol.md, "The
// page, beyond the original").

import type { Page, WebSocket } from '@playwright/test';
import { post, startServer, type Post, type Server } from './support/server';
import { attachServerOutput, expect, expectExactText, openApp, stopAll, test, waitConnected } from './support/app';

let server: Server | undefined;

test.afterEach(async ({}, testInfo) => {
  await attachServerOutput(testInfo, [server]);
  await stopAll([server]);
  server = undefined;
});

/** `cats N`, `dogs N`, `birds N` in turn. */
function animals(count = 900): Post[] {
  const words = ['cats', 'dogs', 'birds'];
  const posts: Post[] = [];
  for (let i = 1; i <= count; i++) posts.push(post(i, `${words[i % 3]} ${i}`));
  return posts;
}

function column(page: Page, index: number) {
  return page.locator('section.column').nth(index);
}

/** The searches in the address, in order. */
function addressTerms(page: Page): string[] {
  return new URL(page.url()).searchParams.getAll('q');
}

/** Submits a search in one column and waits until the server accepted it. */
async function searchIn(page: Page, index: number, term: string): Promise<void> {
  const col = column(page, index);
  await col.locator('input.search-input').fill(term);
  await col.locator('input.search-input').press('Enter');
  await expectExactText(col.locator('.search-term'), term);
}

test('a deep link is rendered on the server with one column per q and its term in the box', async ({ request }) => {
  server = await startServer({ posts: animals(30) });
  const response = await request.get(server.url + '/?q=cats&q=%23news');
  expect(response.status()).toBe(200);
  const html = await response.text();
  expect(html.match(/<section\b[^>]*class="column"/g) ?? []).toHaveLength(2);
  expect(html).toMatch(/<input\b[^>]*id="searchTerm"[^>]*value="cats"/);
  expect(html).toMatch(/<input\b[^>]*id="searchTerm-1"[^>]*value="#news"/);
});

test('a deep link opens its columns, each searching its own term at once', async ({ page }) => {
  server = await startServer({ posts: animals(), rate: 20 });
  await page.goto(server.url + '/?q=cats&q=dogs');
  await waitConnected(page);
  await expect(page.locator('section.column')).toHaveCount(2);
  await expect(column(page, 0).locator('input.search-input')).toHaveValue('cats');
  await expect(column(page, 1).locator('input.search-input')).toHaveValue('dogs');
  await expectExactText(column(page, 0).locator('.search-term'), 'cats');
  await expectExactText(column(page, 1).locator('.search-term'), 'dogs');
  await expect(page).toHaveTitle('"cats" · twitter-search');
  for (const [index, word] of [
    [0, 'cats'],
    [1, 'dogs'],
  ] as const) {
    const texts = column(page, index).locator('.tweet:not(.fadeOut) .text');
    await expect.poll(() => texts.count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
    for (const text of await texts.allTextContents()) expect(text).toMatch(new RegExp(`^${word} \\d+$`));
  }
  // The first column keeps the original page's ids.
  await expect(column(page, 0).locator('#tweet-container')).toHaveCount(1);
  await expect(column(page, 1).locator('#tweet-container')).toHaveCount(0);
});

test('the address follows the accepted searches without adding to the history', async ({ page }) => {
  server = await startServer({ posts: animals() });
  await openApp(page, server);
  const historyLength = await page.evaluate(() => history.length);
  await searchIn(page, 0, 'cats');
  await expect.poll(() => addressTerms(page)).toEqual(['cats']);
  await page.locator('#add-column').click();
  await searchIn(page, 1, 'dogs OR birds');
  await expect.poll(() => addressTerms(page)).toEqual(['cats', 'dogs OR birds']);
  // A refused search changes nothing.
  await column(page, 1).locator('input.search-input').fill('-only');
  await column(page, 1).locator('input.search-input').press('Enter');
  await expect(column(page, 1).locator('.search-error')).not.toHaveText('');
  expect(addressTerms(page)).toEqual(['cats', 'dogs OR birds']);
  await column(page, 1).locator('.close-column').click();
  await expect.poll(() => addressTerms(page)).toEqual(['cats']);
  expect(await page.evaluate(() => history.length)).toBe(historyLength);
  // The address opens the same page again.
  await page.reload();
  await waitConnected(page);
  await expectExactText(column(page, 0).locator('.search-term'), 'cats');
});

test('up to four columns, each with its own WebSocket; closing one closes its socket', async ({ page }) => {
  server = await startServer({ posts: animals() });
  const sockets: WebSocket[] = [];
  page.on('websocket', (ws) => sockets.push(ws));
  await page.setViewportSize({ width: 1280, height: 900 });
  await openApp(page, server);
  await expect(column(page, 0).locator('.close-column')).toHaveCount(0);
  for (let i = 0; i < 3; i++) await page.locator('#add-column').click();
  await expect(page.locator('section.column')).toHaveCount(4);
  await expect(page.locator('#add-column')).toBeDisabled();
  await expect.poll(() => sockets.filter((ws) => !ws.isClosed()).length).toBe(4);
  // Every column has the same parts.
  for (let i = 0; i < 4; i++) {
    const col = column(page, i);
    for (const part of [
      'form.search button[type=submit]',
      'input.search-input',
      '.search-error',
      '.toggle-button',
      '.slider',
      '.slider-value',
      '.search-term',
      '.clear-button',
      '.tweet-container',
      '.new-posts',
      '.rate',
    ]) {
      await expect(col.locator(part), `column ${i} has ${part}`).toHaveCount(1);
    }
  }
  // All four side by side at 1280 px.
  const boxes = await page.locator('section.column').evaluateAll((els) => els.map((el) => el.getBoundingClientRect().toJSON()));
  for (const box of boxes) expect(Math.round(box.top)).toBe(Math.round(boxes[0].top));
  for (let i = 1; i < boxes.length; i++) expect(boxes[i].left).toBeGreaterThanOrEqual(boxes[i - 1].right - 1);
  expect(boxes[3].right).toBeLessThanOrEqual(1280);
  // Each column searches on its own.
  await searchIn(page, 2, 'birds');
  await expect.poll(() => column(page, 2).locator('.tweet').count(), { timeout: 15_000 }).toBeGreaterThan(0);
  await expect(column(page, 1).locator('.tweet')).toHaveCount(0);
  await column(page, 2).locator('.close-column').click();
  await expect(page.locator('section.column')).toHaveCount(3);
  await expect(page.locator('#add-column')).toBeEnabled();
  await expect.poll(() => sockets.filter((ws) => ws.isClosed()).length).toBe(1);
  await expect.poll(() => sockets.filter((ws) => !ws.isClosed()).length).toBe(3);
});

test('a column opened after a closed one comes last, empty, and the address follows', async ({ page }) => {
  server = await startServer({ posts: animals() });
  const sockets: WebSocket[] = [];
  page.on('websocket', (ws) => sockets.push(ws));
  await page.goto(`${server.url}/?q=cats&q=dogs&q=birds`);
  await waitConnected(page);
  await expectExactText(column(page, 2).locator('.search-term'), 'birds');
  await expect.poll(() => column(page, 1).locator('.tweet').count(), { timeout: 15_000 }).toBeGreaterThan(0);
  await column(page, 1).locator('.close-column').click();
  await expect(page.locator('section.column')).toHaveCount(2);
  await expect.poll(() => addressTerms(page)).toEqual(['cats', 'birds']);
  await page.locator('#add-column').click();
  await expect(page.locator('section.column')).toHaveCount(3);
  // The new column is last and starts empty: no search, no posts, no
  // text in its box, streaming, on a new WebSocket of its own.
  const added = column(page, 2);
  await expect(added.locator('input.search-input')).toHaveValue('');
  await expect(added.locator('.tweet')).toHaveCount(0);
  await expect(added.locator('.results-heading')).toBeHidden();
  await expectExactText(column(page, 1).locator('.search-term'), 'birds');
  await expect.poll(() => sockets.filter((ws) => !ws.isClosed()).length).toBe(3);
  expect(sockets.filter((ws) => ws.isClosed())).toHaveLength(1);
  await searchIn(page, 2, 'dogs');
  await expect.poll(() => addressTerms(page)).toEqual(['cats', 'birds', 'dogs']);
  await expect.poll(() => added.locator('.tweet').count(), { timeout: 15_000 }).toBeGreaterThan(0);
  // Tab order follows what is shown.
  const order = await page.locator('section.column input.search-input').evaluateAll((els) => els.map((el) => (el as HTMLInputElement).value));
  expect(order).toEqual(['cats', 'birds', 'dogs']);
});

test('on a phone the columns are stacked', async ({ page }) => {
  server = await startServer({ posts: animals() });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(server.url + '/?q=cats&q=dogs');
  await waitConnected(page);
  const boxes = await page.locator('section.column').evaluateAll((els) => els.map((el) => el.getBoundingClientRect().toJSON()));
  expect(boxes).toHaveLength(2);
  expect(boxes[1].top).toBeGreaterThanOrEqual(boxes[0].bottom);
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  expect(widths.scroll).toBeLessThanOrEqual(widths.client + 1);
});

test('while the tab is hidden the title counts the posts that arrived, and the count goes on return', async ({ page }) => {
  server = await startServer({ posts: animals(), rate: 20 });
  await page.goto(server.url + '/?q=cats');
  await waitConnected(page);
  await expect(page).toHaveTitle('"cats" · twitter-search');
  const setHidden = (hidden: boolean) =>
    page.evaluate((value) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => value });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (value ? 'hidden' : 'visible') });
      // Browsers fire it at the document, bubbling (to the window).
      document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
    }, hidden);
  await setHidden(true);
  await expect(page).toHaveTitle(/^\((\d+)\) "cats" · twitter-search$/, { timeout: 15_000 });
  const first = Number(/^\((\d+)\)/.exec(await page.title())![1]);
  await expect.poll(async () => Number(/^\((\d+)\)/.exec(await page.title())?.[1] ?? 0)).toBeGreaterThan(first);
  await setHidden(false);
  await expect(page).toHaveTitle('"cats" · twitter-search');
});
