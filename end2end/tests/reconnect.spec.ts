// The page reconnects by itself when the server comes back, and restores the
// search and the stopped state the person left.

import { startServer, type Server } from './support/server';
import { catsAndDogs } from './support/data';
import {
  arrivals,
  attachServerOutput,
  expect,
  expectExactText,
  expectNothingArrives,
  openApp,
  RECONNECT_TIMEOUT,
  search,
  stopAll,
  test,
  textsSinceTracking,
  trackArrivals,
  waitConnected,
  waitForArrivals,
  waitForCards,
} from './support/app';

let server: Server | undefined;

test.afterEach(async ({}, testInfo) => {
  await attachServerOutput(testInfo, [server]);
  await stopAll([server]);
  server = undefined;
});

test('the page reconnects after a server restart and sends its search again', async ({ page }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 10 });
  await openApp(page, server);
  const state = page.locator('#connection-state');
  await expect(state).toHaveText(/\S/);
  await search(page, 'cats');
  await waitForCards(page, 2);

  await server.stop();
  await expect(state).toHaveAttribute('data-state', 'reconnecting', { timeout: 15_000 });
  await expect(state).toHaveText(/\S/);

  await trackArrivals(page);
  await server.restart();
  await waitConnected(page, RECONNECT_TIMEOUT);
  await expectExactText(page.locator('#search-term'), 'cats');
  await expect(page.locator('#toggle-button')).toHaveText('Stop Streaming');
  // The new server knows nothing of this page: posts arrive only because the page searched again.
  await waitForArrivals(page, 2);
  const texts = await textsSinceTracking(page);
  expect(texts.length).toBeGreaterThanOrEqual(2);
  for (const text of texts) expect(text).toMatch(/^cats photo \d+$/);
});

test('a stopped stream stays stopped after a reconnect', async ({ page }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 20 });
  await openApp(page, server);
  await search(page, 'cats');
  await waitForCards(page, 2);
  const toggle = page.locator('#toggle-button');
  await toggle.click();
  await expect(toggle).toHaveText('Start Streaming');

  await server.stop();
  await expect(page.locator('#connection-state')).toHaveAttribute('data-state', 'reconnecting', { timeout: 15_000 });
  await trackArrivals(page);
  await server.restart();
  await waitConnected(page, RECONNECT_TIMEOUT);
  await expectExactText(page.locator('#search-term'), 'cats');
  await expect(toggle).toHaveText('Start Streaming');
  // Nothing since the page came back, and nothing for a while after.
  expect(await arrivals(page), 'posts that arrived while reconnecting').toBe(0);
  await expectNothingArrives(page, 2_000);
  await expect(toggle).toHaveText('Start Streaming');

  // Resuming brings posts of the same search.
  await toggle.click();
  await expect(toggle).toHaveText('Stop Streaming');
  await trackArrivals(page);
  await waitForArrivals(page, 2);
  for (const text of await textsSinceTracking(page)) expect(text).toMatch(/^cats photo \d+$/);
});
