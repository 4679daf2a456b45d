// Keyboard, motion, colour, accessibility checks and the page's liveness
// check (docs/protocol.md, "The page, beyond the original").

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Page, WebSocket } from '@playwright/test';
import { post, startServer, type Post, type Server } from './support/server';
import { attachServerOutput, expect, openApp, search, stopAll, test, waitConnected, waitForCards } from './support/app';

let server: Server | undefined;

test.afterEach(async ({}, testInfo) => {
  await attachServerOutput(testInfo, [server]);
  await stopAll([server]);
  server = undefined;
});

/** Posts with everything a card can show: links, a tag, a mention, a permalink. */
function richPosts(count = 600): Post[] {
  const posts: Post[] = [];
  for (let i = 1; i <= count; i++) {
    posts.push(
      post(i, `cats photo ${i} by @ada at https://example.com/${i} #caturday`, {
        url: `https://bsky.app/profile/ada/post/${i}`,
        created_at: new Date().toISOString(),
      }),
    );
  }
  return posts;
}

test('"/" focuses the first column\'s search, but not while typing in a field', async ({ page }) => {
  server = await startServer({ posts: richPosts() });
  await page.goto(server.url + '/?q=cats&q=dogs');
  await waitConnected(page);
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('/');
  await expect(page.locator('#searchTerm')).toBeFocused();
  await expect(page.locator('#searchTerm')).toHaveValue('cats');
  const second = page.locator('section.column').nth(1).locator('input.search-input');
  await second.fill('');
  await second.pressSequentially('a/b');
  await expect(second).toHaveValue('a/b');
  await expect(second).toBeFocused();
});

test('every control is reachable with Tab and shows a focus ring', async ({ page }) => {
  server = await startServer({ posts: richPosts() });
  await openApp(page, server);
  await search(page, 'cats');
  await waitForCards(page, 2);
  // Start from the top of the page.
  await page.locator('h1').click();
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el || el === document.body) return null;
      const style = getComputedStyle(el);
      const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none';
      const name = el.id ? '#' + el.id : el.tagName.toLowerCase() + '.' + (el.className || '').toString().split(' ')[0];
      return { name, ring };
    });
    if (!focused) continue;
    expect(focused.ring, `${focused.name} shows where focus is`).toBe(true);
    seen.add(focused.name);
  }
  for (const id of ['#searchTerm', '#toggle-button', '#slider', '#clear-button', '#add-column']) {
    expect(seen, `${id} is reachable with Tab`).toContain(id);
  }
});

test('with reduced motion cards appear without animation, their classes still set', async ({ page }) => {
  await page.emulateMedia({ reducedMotion: 'reduce' });
  server = await startServer({ posts: richPosts(), rate: 20 });
  await openApp(page, server);
  await search(page, 'cats');
  await waitForCards(page, 3);
  const running = await page.locator('#tweet-container .tweet').evaluateAll((els) =>
    els.map((el) => ({ fadeIn: el.classList.contains('fadeIn') || el.classList.contains('fadeOut'), animations: el.getAnimations().length })),
  );
  for (const card of running) {
    expect(card.fadeIn).toBe(true);
    expect(card.animations).toBe(0);
  }
});

/** Relative luminance of a CSS rgb() colour. */
function luminance(rgb: string): number {
  const [r, g, b] = (rgb.match(/\d+(\.\d+)?/g) ?? ['0', '0', '0']).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

test('the dark theme follows the system setting', async ({ page }) => {
  server = await startServer({ posts: richPosts() });
  await page.emulateMedia({ colorScheme: 'dark' });
  await openApp(page, server);
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(luminance(dark)).toBeLessThan(0.05);
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(luminance(light)).toBeGreaterThan(luminance(dark));
});

async function expectNoViolations(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const summary = results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(summary).toEqual([]);
}

for (const scheme of ['light', 'dark'] as const) {
  test(`no WCAG 2.1 A/AA violation with posts shown, ${scheme} theme`, async ({ page }) => {
    await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
    server = await startServer({ posts: richPosts(), rate: 10 });
    await page.goto(server.url + '/?q=cats&q=%23caturday');
    await waitConnected(page);
    await waitForCards(page, 3);
    // Hold the list still while it is checked.
    await page.locator('section.column').nth(1).locator('.tweet-container').hover();
    await expectNoViolations(page);
  });
}

test('the page pings every 25 s and reconnects after two pings go unanswered', async ({ page }) => {
  const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'twitter-search-ping-')), 'no-pong.toml');
  fs.writeFileSync(config, '[limits]\nanswer_pings = false\n');
  server = await startServer({ posts: richPosts(), extraArgs: ['--config', config] });
  const sockets: WebSocket[] = [];
  const pings: number[] = [];
  page.on('websocket', (ws) => {
    sockets.push(ws);
    ws.on('framesent', (frame) => {
      if (String(frame.payload).includes('"ping"')) pings.push(sockets.indexOf(ws));
    });
  });
  await page.clock.install();
  await openApp(page, server);
  expect(sockets).toHaveLength(1);
  await page.clock.fastForward(25_000);
  await expect.poll(() => pings.length).toBe(1);
  await page.clock.fastForward(25_000);
  await expect.poll(() => pings.length).toBe(2);
  expect(sockets[0].isClosed()).toBe(false);
  // The third period finds two pings unanswered: the page reconnects.
  await page.clock.fastForward(25_000);
  await expect.poll(() => sockets[0].isClosed()).toBe(true);
  await page.clock.fastForward(10_000);
  await expect.poll(() => sockets.length).toBe(2);
  await waitConnected(page);
});

test('a page whose pings are answered keeps its connection', async ({ page }) => {
  server = await startServer({ posts: richPosts() });
  const sockets: WebSocket[] = [];
  let pongs = 0;
  page.on('websocket', (ws) => {
    sockets.push(ws);
    ws.on('framereceived', (frame) => {
      if (String(frame.payload) === '{"type":"pong"}') pongs++;
    });
  });
  await page.clock.install();
  await openApp(page, server);
  for (let i = 1; i <= 4; i++) {
    await page.clock.fastForward(25_000);
    await expect.poll(() => pongs).toBe(i);
  }
  expect(sockets).toHaveLength(1);
  expect(sockets[0].isClosed()).toBe(false);
});
