// Untrusted input: post text, avatar URLs, long words and bad replay lines.

import { startServer, post, type Server } from './support/server';
import { cycle } from './support/data';
import {
  attachServerOutput,
  ARRIVAL_TIMEOUT,
  cardTexts,
  cards,
  expect,
  openApp,
  search,
  sleep,
  stopAll,
  test,
  waitForCards,
} from './support/app';

let server: Server | undefined;

test.afterEach(async ({}, testInfo) => {
  await attachServerOutput(testInfo, [server]);
  await stopAll([server]);
  server = undefined;
});

const IMG_XSS = '<img src=x onerror=alert(1)>';
const SCRIPT_XSS = '<script>window.__xss = 1</script> onerror';

test('post text is shown as text, never run as HTML', async ({ page }) => {
  server = await startServer({
    posts: cycle(100, [
      (id) => post(id, IMG_XSS),
      (id) => post(id, `filler ${id}`),
      (id) => post(id, SCRIPT_XSS),
      (id) => post(id, `<b>bold</b> onerror`),
    ]),
    rate: 20,
  });
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss().catch(() => undefined);
  });
  await openApp(page, server);
  await search(page, 'onerror');
  await expect
    .poll(() => cardTexts(page), { timeout: ARRIVAL_TIMEOUT })
    .toEqual(expect.arrayContaining([IMG_XSS, SCRIPT_XSS, '<b>bold</b> onerror']));
  for (const text of await cardTexts(page)) expect([IMG_XSS, SCRIPT_XSS, '<b>bold</b> onerror']).toContain(text);

  const container = page.locator('#tweet-container');
  await expect(container.locator('.text img')).toHaveCount(0);
  await expect(container.locator('script, b, [onerror]')).toHaveCount(0);
  // Give a broken image the time to fire its handler, had one been made.
  await sleep(500);
  expect(dialogs).toEqual([]);
  expect(await page.evaluate(() => (window as Window & { __xss?: unknown }).__xss)).toBeUndefined();
});

test('an avatar that is empty or not http(s) shows the local placeholder', async ({ page, request }) => {
  server = await startServer({
    posts: cycle(100, [
      (id) => post(id, `avatar empty ${id}`, { user_profile_image: '' }),
      (id) => post(id, `avatar script ${id}`, { user_profile_image: 'javascript:alert(1)' }),
      (id) => post(id, `avatar data ${id}`, { user_profile_image: 'data:image/svg+xml,<svg onload=alert(2)>' }),
    ]),
    rate: 20,
  });
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss().catch(() => undefined);
  });
  await openApp(page, server);
  await search(page, 'avatar');
  await waitForCards(page, 6);

  const seen = await cards(page).evaluateAll((els) =>
    els.map((el) => ({
      text: el.querySelector('.text')?.textContent ?? '',
      avatars: el.querySelectorAll('img.avatar').length,
      src: el.querySelector('img.avatar')?.getAttribute('src') ?? null,
    })),
  );
  for (const kind of ['empty', 'script', 'data']) {
    expect(seen.some((c) => c.text.startsWith(`avatar ${kind} `)), `a card with a ${kind} avatar URL`).toBe(true);
  }
  for (const card of seen) {
    expect(card.avatars, card.text).toBe(1);
    expect(card.src, card.text).toMatch(/^(https?:\/\/[^/]+)?\/avatar-placeholder\.svg$/);
  }
  const placeholder = await request.get(server.url + '/avatar-placeholder.svg');
  expect(placeholder.status()).toBe(200);
  expect(placeholder.headers()['content-type'] ?? '').toContain('image/svg+xml');
  expect(dialogs).toEqual([]);
});

test('a very long word wraps inside its card', async ({ page }) => {
  const long = 'x'.repeat(400);
  server = await startServer({
    posts: cycle(200, [(id) => post(id, `wrap ${long} ${id}`)]),
    rate: 10,
  });
  await openApp(page, server);
  await search(page, 'wrap');
  await waitForCards(page, 1);
  const sizes = await cards(page)
    .first()
    .evaluate((el) => {
      const text = el.querySelector('.text') as HTMLElement | null;
      return {
        cardScroll: el.scrollWidth,
        cardClient: el.clientWidth,
        textScroll: text?.scrollWidth ?? 0,
        textClient: text?.clientWidth ?? 0,
        pageScroll: document.documentElement.scrollWidth,
        pageClient: document.documentElement.clientWidth,
      };
    });
  expect(sizes.cardClient).toBeGreaterThan(0);
  expect(sizes.cardScroll, 'the card does not overflow sideways').toBeLessThanOrEqual(sizes.cardClient + 1);
  expect(sizes.textScroll, 'the text does not overflow sideways').toBeLessThanOrEqual(sizes.textClient + 1);
  expect(sizes.pageScroll, 'the page does not scroll sideways').toBeLessThanOrEqual(sizes.pageClient + 1);
});

test('bad replay lines are skipped and the good posts around them still arrive', async ({ page, request }) => {
  server = await startServer({
    posts: cycle(100, [
      (id, round) => post(id, `good before ${round}`),
      () => '{not json',
      (id, round) => post(id, `good after ${round}`),
      () => 'not json at all',
      () => '[1, 2, 3]',
      () => '',
    ]),
    rate: 20,
  });
  await openApp(page, server);
  await search(page, 'good');
  await expect
    .poll(
      async () => {
        const texts = await cardTexts(page);
        return {
          before: texts.some((t) => t.startsWith('good before ')),
          after: texts.some((t) => t.startsWith('good after ')),
        };
      },
      { timeout: ARRIVAL_TIMEOUT, message: 'posts on both sides of a bad line arrive' },
    )
    .toEqual({ before: true, after: true });
  for (const text of await cardTexts(page)) expect(text).toMatch(/^good (before|after) \d+$/);

  // The server is still up and did not panic.
  expect((await request.get(server.url + '/healthz')).status()).toBe(200);
  expect(server.output()).not.toMatch(/panicked/);
});
