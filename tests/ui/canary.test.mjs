// Secret canary: known secrets in the config (master key, a deployment's api_key), in an env
// file (AWS keys) and in requests (a virtual key, a body, a header) never appear in any page
// or any /ui/api answer, for the master key's session or a virtual key's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { home, startMock, startGateway, launch, newPage, signIn, chat, MASTER_KEY, UPSTREAM_KEY, AWS } from './harness.mjs';

const BODY_SECRET = 'canary-body-7d3e1f0b9a';
const HEADER_SECRET = 'canary-header-4c2a8e6d11';
const PAGES = ['overview', 'deployments', 'spend', 'requests', 'keys', 'config'];
const GROUPS = ['alias', 'model', 'provider', 'tag', 'user', 'key', 'team', 'session', 'day'];
let mock, gateway, browser, virtualKey;

before(async () => {
  const dir = home('canary');
  mock = await startMock(dir);
  await mock.registerAws();
  gateway = await startGateway(dir, mock.url);
  browser = await launch();
  const made = await fetch(gateway.url + '/key/generate', {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ key_alias: 'canary-key' }),
  }).then((r) => r.json());
  virtualKey = made.key;
  const headers = { 'x-canary': HEADER_SECRET };
  for (const key of [MASTER_KEY, virtualKey]) {
    await chat(gateway.url, key, { tags: ['canary'], content: `remember ${BODY_SECRET}`, headers });
    await chat(gateway.url, key, { model: 'bedrock', content: `remember ${BODY_SECRET}`, headers });
  }
  // A failure whose diagnosis names the credentials' source.
  await mock.reset();
  await chat(gateway.url, MASTER_KEY, { model: 'bedrock', content: BODY_SECRET, headers });
  await fetch(gateway.url + '/ui/api/deployments/none/probe', { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}` } });
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await mock?.stop();
});

function secrets() {
  return [MASTER_KEY, UPSTREAM_KEY, AWS.access_key_id, AWS.secret_access_key, AWS.session_token, virtualKey, BODY_SECRET, HEADER_SECRET];
}

function assertClean(where, text) {
  for (const s of secrets()) assert.equal(text.includes(s), false, `${where} contains the secret ${s.slice(0, 6)}…`);
}

for (const who of ['master', 'virtual']) {
  test(`no secret in any page or /ui/api answer (${who} key's session)`, async () => {
    const key = who === 'master' ? MASTER_KEY : virtualKey;
    const page = await newPage(browser);
    const answers = [];
    page.on('response', async (r) => {
      if (r.url().includes('/ui/')) answers.push(r.text().then((t) => [r.url(), t + JSON.stringify(r.headers())]).catch(() => [r.url(), '']));
    });
    await signIn(page, gateway.url, key);
    await page.locator('#who-label').waitFor();
    for (const name of PAGES) {
      await page.goto(`${gateway.url}/ui#/${name}`);
      // A virtual key has no Config page: the dashboard shows the Overview instead.
      const shown = who === 'virtual' && name === 'config' ? 'overview' : name;
      await page.locator(`#page-${shown} h1`).waitFor();
      await page.waitForLoadState('networkidle');
      if (name === 'deployments' && who === 'master') {
        for (const b of await page.getByRole('button', { name: 'Probe now' }).all()) await b.click();
        await page.locator('.diagnosis').first().waitFor();
      }
      if (name === 'requests') {
        const rows = page.locator('#request-list tr.clickable');
        if (await rows.count()) {
          await rows.first().click();
          await page.locator('#request-detail article, #request-detail [role=alert]').first().waitFor();
        }
      }
      assertClean(`the ${name} page`, await page.content());
    }
    // Every API answer directly too, whether or not a page asked for it.
    const paths = ['/session', '/deployments', '/keys', '/teams', '/config', '/overview', '/requests?limit=200',
      ...GROUPS.flatMap((g) => [`/spend?group_by=${g}`, `/spend?group_by=${g}&format=csv`])];
    const direct = await page.evaluate(async (paths) => {
      const out = [];
      for (const p of paths) {
        const r = await fetch('/ui/api' + p);
        out.push([p, r.status, await r.text()]);
      }
      const list = JSON.parse(out.find(([p]) => p.startsWith('/requests'))[2] || '{}');
      for (const row of (list.rows || []).slice(0, 20)) {
        const r = await fetch('/ui/api/requests/' + encodeURIComponent(row.request_id));
        out.push([`/requests/${row.request_id}`, r.status, await r.text()]);
      }
      return out;
    }, paths);
    for (const [p, , text] of direct) assertClean(`/ui/api${p}`, text);
    for (const [url, text] of await Promise.all(answers)) assertClean(url, text);
    assert.ok(direct.find(([p]) => p === '/keys')[1] === 200);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
}
