// Searching: what the server renders, which posts arrive, refused searches,
// and one search per browser page.

import { startServer, type Server } from './support/server';
import { catsAndDogs } from './support/data';
import {
  attachServerOutput,
  cardTexts,
  expect,
  expectExactText,
  openApp,
  search,
  stopAll,
  submitSearch,
  test,
  textsSinceTracking,
  trackArrivals,
  waitForArrivals,
  waitForCards,
} from './support/app';

let server: Server | undefined;

test.afterEach(async ({}, testInfo) => {
  await attachServerOutput(testInfo, [server]);
  await stopAll([server]);
  server = undefined;
});

test('server-rendered HTML holds the search form, the slider and the stylesheet before hydration', async ({ request }) => {
  server = await startServer({ posts: catsAndDogs(20) });
  const response = await request.get(server.url + '/');
  expect(response.status()).toBe(200);
  expect(response.headers()['content-type'] ?? '').toContain('text/html');
  const html = await response.text();
  expect(html).toMatch(/<form\b[^>]*\bname=["']?search\b/);
  expect(html).toMatch(/<input\b[^>]*\bid=["']?searchTerm\b/);
  expect(html).toMatch(/<input\b[^>]*\bid=["']?slider\b/);
  expect(html).toMatch(/<link\b[^>]*\bhref=["']?\/pkg\/twitter-search(\.[\w-]+)?\.css\b/);
  expect(html).toMatch(/\bid=["']?tweet-container\b/);
  expect(html).toMatch(/\bid=["']?connection-state\b/);
});

test('only posts matching the search arrive', async ({ page }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 20 });
  await openApp(page, server);
  await expect(page.locator('#tweet-container .tweet')).toHaveCount(0);
  await search(page, 'cats');
  await waitForCards(page, 4);
  const texts = await cardTexts(page);
  expect(texts.length).toBeGreaterThanOrEqual(4);
  for (const text of texts) expect(text).toMatch(/^cats photo \d+$/);
});

test('the heading shows the search as the server normalised it', async ({ page }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 20 });
  await openApp(page, server);
  await submitSearch(page, '  cats   photo ');
  await expectExactText(page.locator('#search-term'), 'cats photo');
  await expect(page.getByRole('heading').filter({ has: page.locator('#search-term') })).toHaveText(
    'Displaying Tweets for "cats photo"',
  );
  await expect(page.locator('#search-error')).toHaveText('');
  await waitForCards(page, 2);
  for (const text of await cardTexts(page)) expect(text).toMatch(/^cats photo \d+$/);
});

test('a refused search shows the server message and keeps the previous search', async ({ page }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 20 });
  await openApp(page, server);
  await search(page, 'cats');
  await waitForCards(page, 2);

  await submitSearch(page, 'cats OR');
  const error = page.locator('#search-error');
  await expect(error).toHaveAttribute('role', 'alert');
  await expect(error).toContainText(/nothing on its right/i);
  // The previous search is kept, and so is its stream.
  await expectExactText(page.locator('#search-term'), 'cats');
  await expect(page.locator('#toggle-button')).toHaveText('Stop Streaming');
  await trackArrivals(page);
  await waitForArrivals(page, 2);
  for (const text of await textsSinceTracking(page)) expect(text).toMatch(/^cats photo \d+$/);

  // The next accepted search clears the message.
  await search(page, 'dogs');
  await expect(error).toHaveText('');
});

test('a search made only of negations is refused', async ({ page }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 20 });
  await openApp(page, server);
  await submitSearch(page, '-rust');
  await expect(page.locator('#search-error')).toContainText(/only leaves words out/i);
  await expect(page.locator('#toggle-button')).toBeHidden();
  await expect(page.locator('#tweet-container .tweet')).toHaveCount(0);
  // Correcting it is accepted and clears the message.
  await search(page, 'dogs -cats');
  await expect(page.locator('#search-error')).toHaveText('');
  await waitForCards(page, 2);
  for (const text of await cardTexts(page)) expect(text).toMatch(/^dogs photo \d+$/);
});

test('a new search replaces the previous one', async ({ page }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 20 });
  await openApp(page, server);
  await search(page, 'cats');
  await waitForCards(page, 2);
  await search(page, 'dogs');
  // Everything after the server's answer matches the new search only.
  await trackArrivals(page);
  await waitForArrivals(page, 4);
  const texts = await textsSinceTracking(page);
  expect(texts.length).toBeGreaterThanOrEqual(4);
  for (const text of texts) expect(text).toMatch(/^dogs photo \d+$/);
});

test('two pages with different searches see only their own posts', async ({ browser }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 20 });
  const contextA = await browser.newContext();
  const contextB = await browser.newContext();
  try {
    const pageA = await contextA.newPage();
    const pageB = await contextB.newPage();
    await openApp(pageA, server);
    await openApp(pageB, server);
    await search(pageA, 'cats');
    await search(pageB, 'dogs');
    await waitForCards(pageA, 4);
    await waitForCards(pageB, 4);
    for (const text of await cardTexts(pageA)) expect(text).toMatch(/^cats photo \d+$/);
    for (const text of await cardTexts(pageB)) expect(text).toMatch(/^dogs photo \d+$/);
    await expectExactText(pageA.locator('#search-term'), 'cats');
    await expectExactText(pageB.locator('#search-term'), 'dogs');
  } finally {
    await contextA.close();
    await contextB.close();
  }
});
