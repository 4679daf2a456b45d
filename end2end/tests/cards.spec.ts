// What a card shows beyond the original: marks of what the search matched,
// links out, search links, the permalink with the post's age; and what a
// column does while it is read: hold, rates, announcements.

import type { Page } from '@playwright/test';
import { post, startServer, type Post, type Server } from './support/server';
import { numbered } from './support/data';
import {
  attachServerOutput,
  cardTexts,
  expect,
  expectExactText,
  openApp,
  search,
  sleep,
  stopAll,
  test,
  waitConnected,
  waitForCards,
} from './support/app';

let server: Server | undefined;

test.afterEach(async ({}, testInfo) => {
  await attachServerOutput(testInfo, [server]);
  await stopAll([server]);
  server = undefined;
});

/** The marked parts of the first card whose text contains `needle`, in one column. */
async function marksOf(page: Page, columnIndex: number, needle: string): Promise<string[]> {
  const card = page.locator('section.column').nth(columnIndex).locator('.tweet', { hasText: needle }).first();
  await expect(card).toBeVisible({ timeout: 15_000 });
  return card.locator('.text mark').allTextContents();
}

const byteOffset = (text: string, part: string) => Buffer.byteLength(text.slice(0, text.indexOf(part)));

test('marks wrap what the search matched: words, phrases, tags, mentions, links; never negated terms', async ({ page }) => {
  const shortened = 'read example.org/long… later';
  const shortStart = byteOffset(shortened, 'example.org');
  const shortEnd = shortStart + Buffer.byteLength('example.org/long…');
  const posts: Post[] = [];
  for (let round = 0; round < 200; round++) {
    const n = round * 10;
    posts.push(
      post(n + 1, `Rust and WASM news ${round}`),
      post(n + 2, `open-source tools for #RustLang ${round}`),
      post(n + 3, `see https://www.example.com/x today ${round}`),
      post(n + 4, `coffee and tea, green ${round}`),
      post(n + 5, `thanks @Ada@mastodon.social ${round}`),
      post(n + 6, `${shortened} ${round}`, { links: [{ url: 'https://www.example.org/long/path', start: shortStart, end: shortEnd }] }),
    );
  }
  server = await startServer({ posts, rate: 20 });
  const terms = ['rust wasm, @ada', '"open source" #rustlang', 'example.com/x, coffee -"green tea"', 'example.org/long/path'];
  await page.goto(server.url + '/?' + terms.map((t) => 'q=' + encodeURIComponent(t)).join('&'));
  await waitConnected(page);
  expect(await marksOf(page, 0, 'WASM news')).toEqual(['Rust', 'WASM']);
  expect((await marksOf(page, 0, 'thanks')).map((m) => m.toLowerCase())).toEqual(['@ada@mastodon.social']);
  expect(await marksOf(page, 1, 'open-source')).toEqual(['open-source', '#RustLang']);
  const link = await marksOf(page, 2, 'see https');
  expect(link).toHaveLength(1);
  expect(link[0]).toContain('example.com/x');
  // The negated phrase's words are in the text, unmarked.
  expect(await marksOf(page, 2, 'coffee')).toEqual(['coffee']);
  // A shortened link: its visible text is marked.
  expect(await marksOf(page, 3, 'read example')).toEqual(['example.org/long…']);
  // Marks never change the text.
  const texts = await page.locator('section.column').nth(0).locator('.tweet .text').allTextContents();
  for (const text of texts) expect(text).toMatch(/^(Rust and WASM news|thanks @Ada@mastodon\.social) \d+$/);
});

test('links open in a new tab, tags and mentions search, and only http(s) is ever an href', async ({ page }) => {
  const hostile = 'javascript:alert(1) data:text/html,hi JaVaScRiPt:alert(2) hxxps://x.example';
  const posts: Post[] = [];
  for (let i = 1; i <= 300; i++) {
    posts.push(
      post(`a${i}`, `news https://example.com/a?b=${i} by @Ada about #Launch ${i}`, { url: `https://bsky.app/profile/ada/post/${i}` }),
      post(`b${i}`, `news ${hostile} ${i}`, {
        url: 'javascript:alert(3)',
        links: [{ url: 'javascript:alert(4)', start: 5, end: 24 }],
      }),
      post(`c${i}`, `launch party ${i}`),
    );
  }
  server = await startServer({ posts, rate: 20 });
  await openApp(page, server);
  await search(page, 'news');
  await waitForCards(page, 4);
  const hrefs = await page.locator('#tweet-container a').evaluateAll((els) => els.map((el) => el.getAttribute('href')));
  expect(hrefs.length).toBeGreaterThan(0);
  for (const href of hrefs) expect(href ?? '').toMatch(/^(https?:\/\/|\?q=)/);
  const hostileCard = page.locator('#tweet-container .tweet', { hasText: 'javascript:alert(1)' }).first();
  await expect(hostileCard.locator('a')).toHaveCount(0);
  await expect(hostileCard.locator('.text')).toHaveText(/^news javascript:alert\(1\) data:text\/html,hi JaVaScRiPt:alert\(2\) hxxps:\/\/x\.example \d+$/);
  const card = page.locator('#tweet-container .tweet', { hasText: 'https://example.com' }).first();
  const out = card.locator('.text a[href^="https://example.com/a"]');
  await expect(out).toHaveAttribute('target', '_blank');
  await expect(out).toHaveAttribute('rel', 'noopener noreferrer nofollow');
  await expect(card.locator('.text a.search-link', { hasText: '@Ada' })).toHaveAttribute('href', '?q=%40Ada');
  const tag = card.locator('.text a.search-link', { hasText: '#Launch' });
  await expect(tag).toHaveAttribute('href', '?q=%23Launch');
  // A plain click searches the tag in this column.
  await tag.click();
  await expectExactText(page.locator('#search-term'), '#Launch');
  await expect(page.locator('#searchTerm')).toHaveValue('#Launch');
  await expect.poll(() => new URL(page.url()).searchParams.getAll('q')).toEqual(['#Launch']);
});

test('the permalink holds the post time and shows its age, refreshed as time goes', async ({ page }) => {
  await page.clock.install();
  const fiveMinutesAgo = new Date(Date.now() - 5 * 60_000).toISOString();
  const posts: Post[] = [];
  for (let i = 1; i <= 300; i++) {
    posts.push(
      post(`l${i}`, `linked ${i}`, { url: `https://bsky.app/profile/ada/post/${i}`, created_at: fiveMinutesAgo }),
      post(`u${i}`, `unlinked ${i}`, { url: null, created_at: fiveMinutesAgo }),
    );
  }
  server = await startServer({ posts, rate: 10 });
  await openApp(page, server);
  await search(page, 'linked, unlinked');
  await waitForCards(page, 2);
  const linked = page.locator('#tweet-container .tweet', { hasText: /^.*linked \d+/ }).filter({ has: page.locator('a.permalink') }).first();
  const permalink = linked.locator('a.permalink');
  await expect(permalink).toHaveAttribute('href', /^https:\/\/bsky\.app\/profile\/ada\/post\/\d+$/);
  await expect(permalink).toHaveAttribute('target', '_blank');
  await expect(permalink).toHaveAttribute('rel', 'noopener noreferrer');
  await expect(permalink.locator('time')).toHaveAttribute('datetime', fiveMinutesAgo);
  await expect(permalink.locator('time')).toHaveText('5m');
  const unlinked = page.locator('#tweet-container .tweet', { hasText: 'unlinked' }).first();
  await expect(unlinked.locator('a.permalink')).toHaveCount(0);
  await expect(unlinked.locator('time')).toHaveText('5m');
  await page.clock.fastForward(60_000);
  await expect(permalink.locator('time')).toHaveText('6m');
});

test('while the list is read, new posts wait behind "N new posts" and the cards stay put', async ({ page }) => {
  const posts = numbered('cats', 900).map((p) => ({ ...p, url: `https://example.com/${p.id}` }));
  server = await startServer({ posts, rate: 10 });
  await openApp(page, server);
  await search(page, 'cats');
  await waitForCards(page, 3);
  const list = page.locator('#tweet-container');
  const newPosts = page.locator('section.column').first().locator('.new-posts');
  await expect(newPosts).toBeHidden();
  await list.hover();
  const before = await cardTexts(page);
  await expect(newPosts).toHaveText(/^\d+ new posts?$/, { timeout: 10_000 });
  await sleep(500);
  expect(await cardTexts(page)).toEqual(before);
  const held = Number(/^(\d+)/.exec((await newPosts.textContent()) ?? '')![1]);
  expect(held).toBeGreaterThan(0);
  // The pointer leaves: the held posts show, newest first.
  await page.mouse.move(0, 0);
  await expect(newPosts).toBeHidden();
  await expect.poll(async () => (await cardTexts(page))[0]).not.toBe(before[0]);
  // Keyboard focus inside the list holds too; a click on the notice shows them.
  await page.locator('#tweet-container a.permalink').first().focus();
  await expect(newPosts).toHaveText(/^\d+ new posts?$/, { timeout: 10_000 });
  const whileFocused = await cardTexts(page);
  await newPosts.click();
  await expect(newPosts).toBeHidden();
  await expect.poll(async () => (await cardTexts(page))[0]).not.toBe(whileFocused[0]);
  expect((await cardTexts(page)).length).toBeLessThanOrEqual(10);
});

test('each column shows its matches per minute and the page the source rate', async ({ page }) => {
  server = await startServer({ posts: numbered('cats', 900), rate: 10 });
  await openApp(page, server);
  const rate = page.locator('section.column').first().locator('.rate');
  await expect(rate).toHaveText('0 / min');
  await search(page, 'cats');
  await waitForCards(page, 2);
  await expect.poll(async () => Number(/^(\d+) \/ min$/.exec((await rate.textContent()) ?? '')?.[1] ?? 0), { timeout: 10_000 }).toBeGreaterThan(0);
  await expect(page.locator('#source-rate')).toHaveText(/^\d+(\.\d)? posts\/s$/, { timeout: 12_000 });
});

test('the announcer says how many new posts arrived for which search, at most every 10 s', async ({ page }) => {
  server = await startServer({ posts: numbered('cats', 900), rate: 10 });
  await openApp(page, server);
  const announcer = page.locator('#announcer');
  await expect(announcer).toHaveAttribute('aria-live', 'polite');
  await search(page, 'cats');
  await expect(announcer).toHaveText(/^\d+ new posts? for “cats”$/, { timeout: 13_000 });
  // Count the changes over 12 s: at most two announcements (one every
  // 10 s). A steady stream brings the same count each time; the region is
  // then emptied and filled again (two changes), so it is heard again.
  const seen = await page.evaluate(async () => {
    const el = document.getElementById('announcer')!;
    const texts: string[] = [];
    const observer = new MutationObserver(() => texts.push(el.textContent ?? ''));
    observer.observe(el, { childList: true, characterData: true, subtree: true });
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    observer.disconnect();
    return texts;
  });
  expect(seen.length).toBeGreaterThanOrEqual(1);
  expect(seen.length).toBeLessThanOrEqual(2 * 2);
  const said = seen.filter((text) => text !== '');
  expect(said.length).toBeGreaterThanOrEqual(1);
  for (const text of said) expect(text).toMatch(/^\d+ new posts? for “cats”$/);
});
