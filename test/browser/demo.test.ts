/**
 * The demo page (client/demo/index.html, served at /) in headless Chromium:
 * two users in two browser contexts sign in on an embedded node, chat live,
 * react, reply in a thread, see each other typing, edit, unread badges and
 * presence. Saves test/browser/screenshots/two-users.png (both windows side
 * by side).
 *
 * Needs Debian's chromium at /usr/bin/chromium (.ci/run installs it); without
 * it the test is skipped with the reason printed. playwright-core drives it
 * (no browser download). Playwright gives every launch a fresh, empty profile
 * directory itself (it refuses a --user-data-dir argument).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { seedDemo } from '../../cluster/edge/demo-workspace.ts';
import { embeddedNode } from '../edge/fixture.ts';
import type { Page } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

test('two users chat in the demo page: live posts, reactions, threads, typing, edits, unreads, presence', { timeout: 90_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) to run the browser test`);
    return;
  }
  const { chromium } = await import('playwright-core');
  await using node = await embeddedNode();
  await seedDemo(node.node);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  t.after(() => browser.close());
  const errors: string[] = [];

  const open = async (user: string) => {
    const ctx = await browser.newContext({ viewport: { width: 860, height: 560 } });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(`${user}: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`${user} console: ${m.text()}`); });
    page.on('dialog', (d) => void d.accept());
    page.setDefaultTimeout(10_000);
    await page.goto(`${node.url}/`);
    await page.fill('#user', user);
    await page.click('#signin button');
    await page.waitForSelector('body[data-ready="true"]');
    return page;
  };
  /** Types into the composer until `watcher` shows "<user> is typing" (the channel drops a user's typing within 2 s of the last one). */
  const typeUntilSeen = async (typer: Page, user: string, watcher: Page) => {
    const shown = watcher.locator('#typing', { hasText: `${user} is typing` });
    const more = ' and more words to type, slowly…';
    for (let i = 0; i < 40 && !(await shown.isVisible()); i++) {
      await typer.type('#text', more[i % more.length]!);
      await new Promise((r) => setTimeout(r, 250));
    }
    await shown.waitFor({ timeout: 1000 });
  };
  const ada = await open('ada');
  const bob = await open('bob');

  // the seeded welcome message is there, and each sees the other online
  await ada.locator('#log .msg', { hasText: 'Welcome to the Chorus demo' }).waitFor();
  await ada.locator('#people button[data-user="bob"][data-presence="online"]').waitFor();
  await bob.locator('#people button[data-user="ada"][data-presence="online"]').waitFor();

  // bob types: ada sees it; ada posts: bob sees it live
  await typeUntilSeen(bob, 'bob', ada);
  await ada.fill('#text', 'Hi <@bob>, <b>not bold</b> & welcome');
  await ada.press('#text', 'Enter');
  const onBob = bob.locator('#log .msg[data-user="ada"]', { hasText: 'not bold' });
  await onBob.waitFor();
  // user text is text: the tag is shown, not interpreted
  assert.equal(await onBob.locator('.text b').count(), 0);
  assert.match((await onBob.locator('.text').textContent()) ?? '', /@bob, <b>not bold<\/b> & welcome/);
  const seq = await onBob.getAttribute('data-seq');
  assert.ok(seq);

  // bob reacts +1: ada sees the count
  await onBob.hover();
  await onBob.locator('.actions button[data-react="+1"]').click();
  const onAda = ada.locator(`#log .msg[data-seq="${seq}"]`);
  await onAda.locator('.reactions button[data-emoji="+1"]', { hasText: '1' }).waitFor();

  // bob replies in a thread: ada sees "1 reply", opens the thread and sees the reply
  await onBob.hover();
  await onBob.locator('.actions button.reply').click();
  await bob.locator('#thread:not([hidden])').waitFor();
  await bob.fill('#reply-text', 'a reply in the thread');
  await bob.press('#reply-text', 'Enter');
  await bob.locator('#thread-log .msg', { hasText: 'a reply in the thread' }).waitFor();
  await onAda.locator('button.replies', { hasText: '1 reply' }).waitFor();
  await onAda.locator('button.replies').click();
  await ada.locator('#thread-log .msg', { hasText: 'a reply in the thread' }).waitFor();
  assert.equal(await ada.locator('#log .msg', { hasText: 'a reply in the thread' }).count(), 0, 'replies stay out of the channel log');

  // ada edits her message: bob sees the new text, marked edited
  await onAda.hover();
  await onAda.locator('.actions button.edit').click();
  await ada.fill(`#log .msg[data-seq="${seq}"] input.edit-input`, 'Hi <@bob>, edited text');
  await ada.press(`#log .msg[data-seq="${seq}"] input.edit-input`, 'Enter');
  await bob.locator(`#log .msg[data-seq="${seq}"] .edited`).waitFor();
  await bob.locator(`#log .msg[data-seq="${seq}"] .text`, { hasText: 'edited text' }).waitFor();

  // unread badge: ada looks at #random while bob posts twice in #general
  await ada.click('#channels button:has-text("random")');
  await ada.locator('#title', { hasText: 'random' }).waitFor();
  await bob.fill('#text', 'one');
  await bob.press('#text', 'Enter');
  await bob.fill('#text', 'two, for <@ada>');
  await bob.press('#text', 'Enter');
  const generalOnAda = ada.locator('#channels button.item', { hasText: 'general' });
  await generalOnAda.locator('.badge', { hasText: /^1$/ }).waitFor(); // one mention (red badge shows mentions first)
  assert.match((await generalOnAda.getAttribute('class')) ?? '', /unread/);
  await generalOnAda.click();
  await ada.locator('#log .msg', { hasText: 'two, for' }).waitFor();
  assert.equal(await generalOnAda.locator('.badge').count(), 0, 'opening the channel clears its badge');

  // a DM: ada opens one with bob from the people list; bob sees it appear and the message
  await ada.click('#people button[data-user="bob"]');
  await ada.locator('#title', { hasText: 'bob' }).waitFor();
  await ada.fill('#text', 'a private word');
  await ada.press('#text', 'Enter');
  const dmOnBob = bob.locator('#dms button.item', { hasText: 'ada' });
  await dmOnBob.locator('.badge').waitFor();
  await dmOnBob.click();
  await bob.locator('#log .msg', { hasText: 'a private word' }).waitFor();
  assert.equal(await dmOnBob.locator('.badge').count(), 0);

  // back to #general for the picture: bob has the thread open, ada is typing
  await bob.click('#channels button:has-text("general")');
  await bob.locator(`#log .msg[data-seq="${seq}"]`).waitFor();
  await bob.locator(`#log .msg[data-seq="${seq}"] button.replies`).click();
  await bob.locator('#thread-log .msg', { hasText: 'a reply in the thread' }).waitFor();
  assert.equal(await dmOnBob.locator('.badge').count(), 0, 'the DM stays read after bob moved on');
  await ada.click('#channels button:has-text("general")');
  await ada.fill('#text', 'Looks good');
  await typeUntilSeen(ada, 'ada', bob);

  await Promise.all([ada.mouse.move(0, 0), bob.mouse.move(0, 0)]);
  assert.deepEqual(errors, [], 'no page errors');
  await mkdir(SHOTS, { recursive: true });
  const [a, b] = await Promise.all([ada.screenshot({ type: 'png' }), bob.screenshot({ type: 'png' })]);
  const sheet = await (await browser.newContext({ viewport: { width: 1730, height: 580 }, deviceScaleFactor: 1 })).newPage();
  await sheet.setContent(`<body style="margin:0;background:#888;display:flex;gap:10px;padding:10px">
    <img src="data:image/png;base64,${a.toString('base64')}"><img src="data:image/png;base64,${b.toString('base64')}"></body>`);
  await sheet.waitForFunction('[...document.images].every((i) => i.complete && i.naturalWidth > 0)');
  const png = await sheet.screenshot({ type: 'png' });
  await writeFile(`${SHOTS}two-users.png`, png);
  t.diagnostic(`screenshot: test/browser/screenshots/two-users.png (${png.length} bytes)`);
});
