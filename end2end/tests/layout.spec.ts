// The page at a phone's width, and right-to-left text.

import { startServer, post, type Server } from './support/server';
import { cycle } from './support/data';
import { attachServerOutput, cards, expect, openApp, search, stopAll, test, waitForCards } from './support/app';

let server: Server | undefined;

test.afterEach(async ({}, testInfo) => {
  await attachServerOutput(testInfo, [server]);
  await stopAll([server]);
  server = undefined;
});

test.use({ viewport: { width: 360, height: 740 } });

test('at a phone width every control is visible and nothing scrolls sideways', async ({ page }) => {
  server = await startServer({
    posts: cycle(200, [
      (id) => post(id, `phone https://www.example.com/a/very/long/path/that/goes/on/and/on/${'segment'.repeat(12)} ${id}`),
    ]),
    rate: 10,
  });
  await openApp(page, server);
  await search(page, 'phone');
  await waitForCards(page, 2);
  for (const id of ['#searchTerm', '#toggle-button', '#slider', '#sliderValue', '#clear-button', '#search-term']) {
    const box = await page.locator(id).boundingBox();
    expect(box, `${id} is laid out`).not.toBeNull();
    expect(box!.x, `${id} starts on screen`).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width, `${id} ends on screen`).toBeLessThanOrEqual(360 + 1);
  }
  const widths = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  expect(widths.scroll, 'the page does not scroll sideways').toBeLessThanOrEqual(widths.client + 1);
});

test('right-to-left text is isolated in its card', async ({ page }) => {
  server = await startServer({
    posts: cycle(200, [(id) => post(id, `مرحبا بالعالم rtl ${id} #music`, { name: 'سارة', screen_name: 'sara' })]),
    rate: 10,
  });
  await openApp(page, server);
  await search(page, 'rtl');
  await waitForCards(page, 1);
  const card = cards(page).first();
  await expect(card.locator('.text')).toHaveAttribute('dir', 'auto');
  await expect(card.locator('.full-name')).toHaveAttribute('dir', 'auto');
  const direction = await card.locator('.text').evaluate((el) => getComputedStyle(el).direction);
  expect(direction).toBe('rtl');
  // The handle after an Arabic name still reads @sara.
  await expect(card.locator('.username')).toHaveText('@sara');
  // A Latin hashtag in Arabic text is isolated, so it reads #music and
  // not music#.
  const tag = card.locator('a.search-link');
  await expect(tag).toHaveText('#music');
  await expect(tag).toHaveAttribute('dir', 'auto');
  expect(await tag.evaluate((el) => getComputedStyle(el).direction)).toBe('ltr');
});
