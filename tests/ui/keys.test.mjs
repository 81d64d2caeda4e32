// Keys: created in the dashboard (shown once), used by a client, blocked in the dashboard and
// refused; a virtual key's session is read-only and sees only its own key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { home, startMock, startGateway, launch, newPage, signIn, screenshot, chat, MASTER_KEY } from './harness.mjs';

let mock, gateway, browser;

before(async () => {
  const dir = home('keys');
  mock = await startMock(dir);
  gateway = await startGateway(dir, mock.url);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await mock?.stop();
});

test('a key created in the dashboard works for a client until it is blocked there', async () => {
  const page = await newPage(browser);
  await signIn(page, gateway.url, MASTER_KEY);
  await page.locator('#who-label').waitFor();
  await page.goto(`${gateway.url}/ui#/keys`);
  await page.locator('#create-key summary').click();
  const form = page.locator('#create-key form');
  await form.locator('input[name=key_alias]').fill('ci-runner');
  await form.locator('input[name=models]').fill('cheap');
  await form.locator('input[name=max_budget]').fill('5');
  await form.locator('input[name=rpm_limit]').fill('60');
  await form.getByRole('button', { name: 'Create key' }).click();
  const shown = page.locator('#new-key pre.copy-text');
  await shown.waitFor();
  const key = (await shown.textContent()).trim();
  assert.match(key, /^sk-[A-Za-z0-9_-]{20,}$/);
  await screenshot(page, 'keys-created-laptop-light');

  const row = page.locator('tr', { has: page.locator('[data-key="ci-runner"]') });
  assert.match(await row.textContent(), /\$5\.00/);
  assert.match(await row.textContent(), /60 rpm/);
  assert.doesNotMatch(await row.textContent(), new RegExp(key), 'the table never shows the key');

  const ok = await chat(gateway.url, key);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const denied = await chat(gateway.url, key, { model: 'bedrock' });
  assert.equal(denied.status, 403, 'the key may call only `cheap`');

  // Shown once: a reload no longer has it.
  await page.reload();
  await page.locator('#page-keys table').first().waitFor();
  assert.equal(await page.locator('#new-key pre').count(), 0);
  assert.equal((await page.content()).includes(key), false);

  await page.locator('[data-key="ci-runner"] [data-action=block]').click();
  await page.locator('tr', { has: page.locator('[data-key="ci-runner"]') }).locator('.badge', { hasText: 'blocked' }).waitFor();
  const refused = await chat(gateway.url, key);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error.diagnosis.id, 'KEY-03');

  await page.locator('[data-key="ci-runner"] [data-action=unblock]').click();
  await page.locator('tr', { has: page.locator('[data-key="ci-runner"]') }).locator('.badge', { hasText: 'active' }).waitFor();
  assert.equal((await chat(gateway.url, key)).status, 200);

  // A virtual key's own session: read-only, its own key only, no config.
  const mine = await newPage(browser);
  await signIn(mine, gateway.url, key);
  await mine.locator('#who-label').waitFor();
  assert.match(await mine.locator('#who-label').textContent(), /ci-runner.*read-only/);
  await mine.goto(`${gateway.url}/ui#/keys`);
  await mine.locator('#page-keys table').first().waitFor();
  assert.equal(await mine.locator('#create-key').count(), 0);
  assert.equal(await mine.locator('[data-action]').count(), 0);
  assert.equal(await mine.locator('nav a[data-page=config]').isVisible(), false);
  const attempt = await mine.evaluate(async () => {
    const { csrf_token } = await fetch('/ui/api/session').then((r) => r.json());
    const r = await fetch('/ui/api/teams', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf_token }, body: '{"team_alias":"x"}' });
    const config = await fetch('/ui/api/config');
    return { status: r.status, id: (await r.json()).error.diagnosis.id, config: config.status };
  });
  assert.deepEqual(attempt, { status: 403, id: 'UI-04', config: 403 });

  // Deleted in the master's dashboard: the key's session ends at its next request.
  page.once('dialog', (d) => d.accept());
  await page.locator('[data-key="ci-runner"] [data-action=delete]').click();
  await page.locator('[data-key="ci-runner"]').waitFor({ state: 'detached' });
  assert.equal((await chat(gateway.url, key)).status, 401);
  const after = await mine.evaluate(() => fetch('/ui/api/keys').then((r) => r.status));
  assert.equal(after, 401);
  assert.deepEqual([...page.problems, ...mine.problems], []);
  await page.context().close();
  await mine.context().close();
});
