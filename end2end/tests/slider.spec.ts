// The limit slider: at most that many cards stay on screen.

import type { Page } from '@playwright/test';
import { startServer, type Server } from './support/server';
import { numbered } from './support/data';
import {
  allCards,
  attachServerOutput,
  cardTexts,
  cards,
  expect,
  maxCardsDuring,
  openApp,
  QUIET_MS,
  search,
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

async function setSlider(page: Page, value: number): Promise<void> {
  await page.locator('#slider').fill(String(value));
  await expect(page.locator('#slider')).toHaveValue(String(value));
  await expect(page.locator('#sliderValue')).toHaveText(String(value));
}

type FadeWindow = Window & { __sawFadeOut?: boolean; __fadeObserver?: MutationObserver };

/** Records in the page whether any card gets the class `fadeOut` from now on. */
async function watchFadeOut(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as FadeWindow;
    w.__fadeObserver?.disconnect();
    w.__sawFadeOut = false;
    const isLeaving = (node: Node) =>
      node instanceof Element && (node.matches('.tweet.fadeOut') || node.querySelector('.tweet.fadeOut') !== null);
    const observer = new MutationObserver((records) => {
      for (const record of records) {
        if (isLeaving(record.target)) w.__sawFadeOut = true;
        record.addedNodes.forEach((node) => {
          if (isLeaving(node)) w.__sawFadeOut = true;
        });
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
    w.__fadeObserver = observer;
  });
}

test('the slider goes from 1 to 20, starts at 10 and shows its value', async ({ page }) => {
  server = await startServer({ posts: numbered('alpha') });
  await openApp(page, server);
  const slider = page.locator('#slider');
  await expect(slider).toHaveAttribute('type', 'range');
  await expect(slider).toHaveAttribute('min', '1');
  await expect(slider).toHaveAttribute('max', '20');
  await expect(slider).toHaveAttribute('step', '1');
  await expect(slider).toHaveValue('10');
  await expect(page.locator('#sliderValue')).toHaveText('10');
  await setSlider(page, 3);
  await setSlider(page, 20);
  await setSlider(page, 1);
});

test('at most ten posts stay on screen by default', async ({ page }) => {
  server = await startServer({ posts: numbered('alpha'), rate: 20 });
  await openApp(page, server);
  await search(page, 'alpha');
  await waitForCards(page, 10);
  expect(await maxCardsDuring(page, QUIET_MS)).toBeLessThanOrEqual(10);
  await expect(cards(page)).toHaveCount(10);
});

test('at most the slider value of posts stay on screen', async ({ page }) => {
  server = await startServer({ posts: numbered('alpha'), rate: 20 });
  await openApp(page, server);
  await setSlider(page, 3);
  await search(page, 'alpha');
  await waitForCards(page, 3);
  expect(await maxCardsDuring(page, QUIET_MS)).toBeLessThanOrEqual(3);

  // Raising it lets more stay.
  await setSlider(page, 6);
  await waitForCards(page, 6);
  expect(await maxCardsDuring(page, QUIET_MS)).toBeLessThanOrEqual(6);
});

test('lowering the slider removes the oldest extra posts at once', async ({ page }) => {
  server = await startServer({ posts: numbered('alpha'), rate: 20 });
  await openApp(page, server);
  await search(page, 'alpha');
  await waitForCards(page, 10);

  // Stop so that only the slider changes the list.
  const toggle = page.locator('#toggle-button');
  await toggle.click();
  await expect(toggle).toHaveText('Start Streaming');
  const before = await cardTexts(page);
  expect(before).toHaveLength(10);

  await watchFadeOut(page);
  await setSlider(page, 3);
  // At once: no new post is needed to make room.
  await expect(cards(page)).toHaveCount(3, { timeout: 3_000 });
  expect(await cardTexts(page)).toEqual(before.slice(0, 3));
  expect(await page.evaluate(() => (window as FadeWindow).__sawFadeOut ?? false), 'removed cards fade out').toBe(true);
  // The leaving cards are gone from the page shortly after.
  await expect(allCards(page)).toHaveCount(3);

  // Raising it again while stopped brings nothing back; resuming fills up to the new limit.
  await setSlider(page, 5);
  await expect(cards(page)).toHaveCount(3);
  await toggle.click();
  await expect(toggle).toHaveText('Stop Streaming');
  await waitForCards(page, 5);
  expect(await maxCardsDuring(page, QUIET_MS)).toBeLessThanOrEqual(5);
});
