// Deployments: a Bedrock deployment whose credentials AWS no longer knows shows its diagnosis
// and the exact remedy after "Probe now", and its minimal IAM policy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { home, startMock, startGateway, launch, newPage, signIn, screenshot, MASTER_KEY, BEDROCK_MODEL } from './harness.mjs';

let mock, gateway, browser;

before(async () => {
  const dir = home('deployments');
  mock = await startMock(dir);
  await mock.registerAws();
  gateway = await startGateway(dir, mock.url);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await mock?.stop();
});

test('broken Bedrock credentials show their diagnosis and remedy; fixed, the probe is healthy again', async () => {
  const page = await newPage(browser);
  await signIn(page, gateway.url, MASTER_KEY);
  await page.locator('#who-label').waitFor();
  await page.goto(`${gateway.url}/ui#/deployments`);
  const card = page.locator('article.deployment', { hasText: BEDROCK_MODEL });
  await card.waitFor();

  await card.getByRole('button', { name: 'Probe now' }).click();
  await card.locator('.badge', { hasText: 'healthy' }).first().waitFor();
  assert.equal(await card.getAttribute('class'), 'deployment healthy');

  // The mock forgets the identity: AWS no longer knows these keys (UnrecognizedClientException).
  await mock.reset();
  await card.getByRole('button', { name: 'Probe now' }).click();
  const diagnosis = card.locator('.diagnosis');
  await diagnosis.waitFor();
  assert.equal(await card.getAttribute('class'), 'deployment unhealthy');
  // The page's summary follows the probe.
  assert.equal(await page.locator('.page-head .badge').textContent(), '1 of 2 unhealthy');
  const text = await diagnosis.textContent();
  assert.match(text, /AWS-01/);
  assert.match(text, /security token included in the request is invalid/i);
  assert.match(text, /not a missing permission/i);
  const remedy = await diagnosis.locator('pre.copy-text').textContent();
  assert.match(remedy, /aws sso login|aws_profile_name/);
  assert.ok(diagnosis.getByRole('button', { name: 'Copy' }));

  await card.locator('details.policy summary').click();
  const policy = JSON.parse(await card.locator('details.policy pre').textContent());
  assert.deepEqual(policy.Statement[0].Action, ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream']);
  assert.deepEqual(policy.Statement[0].Resource, [`arn:aws:bedrock:us-east-1::foundation-model/${BEDROCK_MODEL}`]);
  await screenshot(page, 'deployments-diagnosis-laptop-light');

  await mock.registerAws();
  await card.getByRole('button', { name: 'Probe now' }).click();
  await page.locator('article.deployment.healthy', { hasText: BEDROCK_MODEL }).waitFor();
  assert.equal(await card.locator('.diagnosis').count(), 0);
  assert.equal(await page.locator('.page-head .badge').textContent(), '2 healthy');
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
