// Sign-in and out, the cookie's flags, CSRF, the Content-Security-Policy on every page, and a
// screenshot of each page in light and dark, on a laptop and a phone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { home, startMock, startGateway, launch, newPage, signIn, screenshot, chat, MASTER_KEY, LAPTOP, PHONE } from './harness.mjs';

const PAGES = ['overview', 'deployments', 'spend', 'requests', 'keys', 'config'];
let mock, gateway, browser;

before(async () => {
  const dir = home('session');
  mock = await startMock(dir);
  await mock.registerAws();
  gateway = await startGateway(dir, mock.url);
  browser = await launch();
  // Some traffic, so the pages have something to show.
  for (const tags of [['ticket-101'], ['ticket-102'], ['ticket-101']]) await chat(gateway.url, MASTER_KEY, { tags });
  await chat(gateway.url, MASTER_KEY, { model: 'bedrock', tags: ['ticket-103'] });
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await mock?.stop();
});

test('a wrong key is refused with the reason and what to do', async () => {
  const page = await newPage(browser);
  await signIn(page, gateway.url, 'sk-not-the-master-key');
  const alert = page.locator('#sign-in-status [role=alert]');
  await alert.waitFor();
  const text = await alert.textContent();
  assert.match(text, /Sign-in refused/);
  assert.match(text, /UI-01/);
  assert.match(text, /master key/);
  assert.equal(await page.locator('#nav').isVisible(), false);
  assert.deepEqual((await page.context().cookies()).filter((c) => c.name === 'switchyard_ui'), []);
  await page.context().close();
});

test('the master key signs in with an HttpOnly, SameSite=Strict cookie, and signing out ends it', async () => {
  const page = await newPage(browser);
  const answer = page.waitForResponse((r) => r.url().endsWith('/ui/api/session') && r.request().method() === 'POST');
  await signIn(page, gateway.url, MASTER_KEY);
  const setCookie = (await (await answer).allHeaders())['set-cookie'];
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  assert.match(setCookie, /Path=\/ui/);
  assert.match(setCookie, /Max-Age=43200/);
  assert.doesNotMatch(setCookie, /Secure/, 'plain http on loopback: a Secure cookie would never come back');
  await page.locator('#who-label').waitFor();
  assert.equal(await page.locator('#who-label').textContent(), 'Master key');
  const [cookie] = (await page.context().cookies()).filter((c) => c.name === 'switchyard_ui');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(!cookie.value.includes(MASTER_KEY));
  // Scripts on the page cannot read it.
  assert.equal(await page.evaluate(() => document.cookie), '');

  await page.locator('#sign-out').click();
  await page.locator('#sign-in').waitFor();
  const session = await page.evaluate(() => fetch('/ui/api/session').then((r) => r.json()));
  assert.equal(session.signed_in, false);
  const keys = await page.evaluate(() => fetch('/ui/api/keys').then((r) => r.status));
  assert.equal(keys, 401);
  await page.context().close();
});

test('a change without the CSRF token, or from another origin, is refused', async () => {
  const page = await newPage(browser);
  await signIn(page, gateway.url, MASTER_KEY);
  await page.locator('#who-label').waitFor();
  const results = await page.evaluate(async () => {
    const post = (headers) => fetch('/ui/api/teams', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ team_alias: 'csrf-probe' }) })
      .then(async (r) => ({ status: r.status, body: await r.json() }));
    const { csrf_token } = await fetch('/ui/api/session').then((r) => r.json());
    return { missing: await post({}), wrong: await post({ 'x-csrf-token': 'forged' }), ok: await post({ 'x-csrf-token': csrf_token }) };
  });
  assert.equal(results.missing.status, 403);
  assert.equal(results.missing.body.error.diagnosis.id, 'UI-03');
  assert.equal(results.wrong.status, 403);
  assert.equal(results.ok.status, 200, JSON.stringify(results.ok.body));

  // The same cookie and token sent by another site's page are refused for their Origin.
  const [cookie] = (await page.context().cookies()).filter((c) => c.name === 'switchyard_ui');
  const { csrf_token: token } = await page.evaluate(() => fetch('/ui/api/session').then((r) => r.json()));
  const foreign = await fetch(gateway.url + '/ui/api/teams', {
    method: 'POST',
    headers: { cookie: `switchyard_ui=${cookie.value}`, 'x-csrf-token': token, origin: 'https://evil.example', 'content-type': 'application/json' },
    body: JSON.stringify({ team_alias: 'from-evil' }),
  });
  assert.equal(foreign.status, 403);
  const teams = await page.evaluate(() => fetch('/ui/api/teams').then((r) => r.json()));
  assert.deepEqual(teams.map((t) => t.team_alias).sort(), ['csrf-probe']);
  await page.context().close();
});

test('every page carries the CSP, renders without a CSP violation or script error, and is captured', async () => {
  const head = await fetch(gateway.url + '/ui');
  const csp = head.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(head.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(head.headers.get('referrer-policy'), 'no-referrer');
  for (const [size, viewport] of [['laptop', LAPTOP], ['phone', PHONE]]) {
    for (const scheme of ['light', 'dark']) {
      const page = await newPage(browser, { viewport, colorScheme: scheme });
      await signIn(page, gateway.url, MASTER_KEY);
      await page.locator('#who-label').waitFor();
      for (const name of PAGES) {
        await page.goto(`${gateway.url}/ui#/${name}`);
        await page.locator(`#page-${name} h1`).waitFor();
        await page.waitForLoadState('networkidle');
        await page.waitForTimeout(150); // charts draw on the next animation frame
        assert.equal(await page.locator(`#page-${name} h1`).isVisible(), true);
        await screenshot(page, `${name}-${size}-${scheme}`);
      }
      assert.deepEqual(page.problems, [], `${size} ${scheme}`);
      await page.context().close();
    }
  }
});
