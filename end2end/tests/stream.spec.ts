// The stream: stop and start, clearing, order of the cards and what a card shows.

import { startServer, type Server } from './support/server';
import { catsAndDogs, numbered, trailingNumber } from './support/data';
import {
  allCards,
  attachServerOutput,
  cardTexts,
  cards,
  expect,
  expectNothingArrives,
  openApp,
  search,
  stopAll,
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

test('the stream toggle is hidden until the first accepted search', async ({ page }) => {
  server = await startServer({ posts: numbered('alpha') });
  await openApp(page, server);
  const toggle = page.locator('#toggle-button');
  await expect(toggle).toBeHidden();
  await search(page, 'alpha');
  await expect(toggle).toBeVisible();
  await expect(toggle).toHaveText('Stop Streaming');
});

test('stopping the stream halts new posts and starting resumes them', async ({ page }) => {
  server = await startServer({ posts: numbered('alpha'), rate: 10 });
  await openApp(page, server);
  await search(page, 'alpha');
  await waitForCards(page, 2);

  const toggle = page.locator('#toggle-button');
  await toggle.click();
  await expect(toggle).toHaveText('Start Streaming');
  await expectNothingArrives(page);

  await toggle.click();
  await expect(toggle).toHaveText('Stop Streaming');
  await trackArrivals(page);
  await waitForArrivals(page, 2);
  for (const text of await textsSinceTracking(page)) expect(text).toMatch(/^alpha \d+$/);
});

test('a new search while stopped resumes the stream', async ({ page }) => {
  server = await startServer({ posts: catsAndDogs(), rate: 20 });
  await openApp(page, server);
  await search(page, 'cats');
  await waitForCards(page, 2);
  const toggle = page.locator('#toggle-button');
  await toggle.click();
  await expect(toggle).toHaveText('Start Streaming');

  await search(page, 'dogs');
  await expect(toggle).toHaveText('Stop Streaming');
  await trackArrivals(page);
  await waitForArrivals(page, 2);
  for (const text of await textsSinceTracking(page)) expect(text).toMatch(/^dogs photo \d+$/);
});

test('the clear button empties the list', async ({ page }) => {
  server = await startServer({ posts: numbered('alpha'), rate: 20 });
  await openApp(page, server);
  await search(page, 'alpha');
  await waitForCards(page, 3);

  // While streaming: the cards that were there go away.
  const before = await cardTexts(page);
  await page.locator('#clear-button').click();
  await expect
    .poll(async () => (await cardTexts(page)).filter((t) => before.includes(t)))
    .toEqual([]);

  // While stopped: nothing is left at all.
  const toggle = page.locator('#toggle-button');
  await toggle.click();
  await expect(toggle).toHaveText('Start Streaming');
  await page.locator('#clear-button').click();
  await expect(allCards(page)).toHaveCount(0);
  await expect(page.locator('#tweet-container')).toBeAttached();
});

test('posts appear newest first and fade in', async ({ page }) => {
  server = await startServer({ posts: numbered('alpha'), rate: 10 });
  await openApp(page, server);
  await search(page, 'alpha');
  await waitForCards(page, 4);
  const numbers = (await cardTexts(page)).map(trailingNumber);
  expect(numbers.length).toBeGreaterThanOrEqual(4);
  for (let i = 1; i < numbers.length; i++) {
    expect(numbers[i - 1], `card ${i} (${numbers[i - 1]}) is newer than card ${i + 1} (${numbers[i]})`).toBeGreaterThan(
      numbers[i],
    );
  }
  await expect(cards(page).first()).toHaveClass(/(^|\s)fadeIn(\s|$)/);
});

test('a card shows the avatar, name, handle and text of its post', async ({ page }) => {
  server = await startServer({ posts: numbered('card'), rate: 10 });
  await openApp(page, server);
  await search(page, 'card');
  await waitForCards(page, 1);
  // Read one card in one go (new ones keep arriving on top).
  const card = await cards(page)
    .first()
    .evaluate((el) => ({
      avatars: el.querySelectorAll('img.avatar').length,
      fullName: el.querySelector('.full-name')?.textContent?.trim() ?? null,
      username: el.querySelector('.username')?.textContent?.trim() ?? null,
      text: el.querySelector('.text')?.textContent ?? null,
      dir: el.querySelector('.text')?.getAttribute('dir') ?? null,
    }));
  expect(card.text).toMatch(/^card \d+$/);
  const n = trailingNumber(card.text ?? '');
  expect(card.avatars).toBe(1);
  expect(card.fullName).toBe(`Name ${n}`);
  expect(card.username).toBe(`@user${n}`);
  expect(card.dir).toBe('auto');
});

test('stopping the stream on one page does not stop it on another', async ({ browser }) => {
  server = await startServer({ posts: numbered('alpha'), rate: 20 });
  const contextA = await browser.newContext();
  const contextB = await browser.newContext();
  try {
    const pageA = await contextA.newPage();
    const pageB = await contextB.newPage();
    await openApp(pageA, server);
    await openApp(pageB, server);
    await search(pageA, 'alpha');
    await search(pageB, 'alpha');
    await waitForCards(pageA, 2);
    await waitForCards(pageB, 2);

    const toggleB = pageB.locator('#toggle-button');
    await toggleB.click();
    await expect(toggleB).toHaveText('Start Streaming');
    await expect(pageA.locator('#toggle-button')).toHaveText('Stop Streaming');

    await trackArrivals(pageA);
    await waitForArrivals(pageA, 5);
    await expectNothingArrives(pageB);
  } finally {
    await contextA.close();
    await contextB.close();
  }
});
