// Processes and the browser the dashboard tests drive: the mock upstream, a gateway on a
// generated config, and Debian's chromium through playwright-core (installed by scripts/test
// into .cache/playwright). Each test file starts its own processes on free ports.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, writeFileSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SCREENSHOTS = join(ROOT, 'target', 'ui-screenshots');
// Known secrets: none of them may ever appear in a page or an /ui/api answer.
export const MASTER_KEY = 'sk-ui-master-CANARY-5f1e9a7c';
export const UPSTREAM_KEY = 'sk-ant-api03-mock-valid-key';
export const AWS = {
  access_key_id: 'ASIAUICANARY00000001',
  secret_access_key: 'uiCanarySecretAccessKey000000000000000001',
  session_token: 'IQoJuiCanarySessionToken//////////wEaCXVzLWVhc3QtMQ==',
  arn: 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BedrockUsers_0123456789abcdef/ui@example.com',
};
export const BEDROCK_MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';

const require = createRequire(join(process.env.PLAYWRIGHT_DIR || join(ROOT, '.cache', 'playwright'), 'package.json'));
const { chromium } = require('playwright-core');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

function binary(envVar, name) {
  return process.env[envVar] || join(ROOT, 'target', 'debug', name);
}

function childEnv(home) {
  return { PATH: process.env.PATH || '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
}

/** Starts `argv`, resolving with its URL once it prints `<prefix> listening on URL`. */
function startProcess(name, argv, prefix, home) {
  const log = join(home, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(argv[0], argv.slice(1), { cwd: home, env: childEnv(home), stdio: ['ignore', 'pipe', fd] });
  return new Promise((resolveUrl, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`${name} did not start; log:\n${readFileSync(log, 'utf8').slice(-4000)}`)), 20000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      const marker = `${prefix} listening on `;
      if (!line.startsWith(marker)) return reject(new Error(`${name}: unexpected first line ${line}`));
      // Keep draining stdout so the child never blocks on a full pipe.
      child.stdout.resume();
      resolveUrl({ url: line.slice(marker.length).trim(), child, log, stop: () => stop(child) });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}); log:\n${readFileSync(log, 'utf8').slice(-4000)}`)));
  });
}

function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10000);
    child.once('exit', () => { clearTimeout(kill); done(); });
    child.kill('SIGTERM');
  });
}

export async function startMock(home) {
  const p = await startProcess('mock-upstream', [binary('MOCK_UPSTREAM_BIN', 'mock-upstream'), '--port', '0', '--admin', '--api-key', UPSTREAM_KEY], 'mock-upstream', home);
  const admin = async (method, path, body) => {
    const r = await fetch(p.url + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!r.ok) throw new Error(`mock ${method} ${path}: ${r.status} ${await r.text()}`);
    return r.status === 204 ? null : r.json().catch(() => null);
  };
  return {
    ...p,
    reset: () => admin('POST', '/_mock/reset'),
    // The AWS identity the Bedrock deployment signs with; a reset forgets it (AWS-01 then).
    registerAws: () => admin('POST', '/_mock/aws/identity', AWS),
  };
}

/** A temporary directory for one test file's processes. */
export function home(name) {
  const dir = mkdtempSync(join(tmpdir(), `switchyard-ui-${name}-`));
  mkdirSync(join(dir, 'state'), { recursive: true });
  return dir;
}

/**
 * A gateway on the mock: `cheap` on the Anthropic emulation, `bedrock` on the Bedrock one with
 * AWS keys from an env file. `extra` is appended to the config.
 */
export async function startGateway(dir, mockUrl, { masterKey = MASTER_KEY, extra = '' } = {}) {
  const envFile = join(dir, 'switchyard.env');
  writeFileSync(envFile, [
    `UI_AWS_ACCESS_KEY_ID=${AWS.access_key_id}`,
    `UI_AWS_SECRET_ACCESS_KEY=${AWS.secret_access_key}`,
    `UI_AWS_SESSION_TOKEN=${AWS.session_token}`, ''].join('\n'));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, [
    'model_list:',
    '  - model_name: cheap',
    '    litellm_params:',
    '      model: anthropic/claude-haiku-4-5',
    `      api_base: ${JSON.stringify(mockUrl)}`,
    `      api_key: ${JSON.stringify(UPSTREAM_KEY)}`,
    '  - model_name: bedrock',
    '    litellm_params:',
    `      model: bedrock/${BEDROCK_MODEL}`,
    '      aws_region_name: us-east-1',
    `      aws_bedrock_runtime_endpoint: ${JSON.stringify(mockUrl)}`,
    '      aws_access_key_id: os.environ/UI_AWS_ACCESS_KEY_ID',
    '      aws_secret_access_key: os.environ/UI_AWS_SECRET_ACCESS_KEY',
    '      aws_session_token: os.environ/UI_AWS_SESSION_TOKEN',
    'router_settings:',
    '  num_retries: 0',
    '  disable_cooldowns: true',
    ...(masterKey ? ['general_settings:', `  master_key: ${JSON.stringify(masterKey)}`] : []),
    extra, ''].join('\n'));
  return startProcess('switchyard', [binary('SWITCHYARD_BIN', 'switchyard'), '--config', config, '--env-file', envFile,
    '--host', '127.0.0.1', '--port', '0', '--state-dir', join(dir, 'state')], 'Switchyard', dir);
}

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}

export const LAPTOP = { width: 1366, height: 860 };
export const PHONE = { width: 390, height: 844 };

/**
 * A page that records every CSP violation and script error Chromium reports, so a test can
 * assert there were none.
 */
export async function newPage(browser, { viewport = LAPTOP, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content Security Policy|Refused to (load|execute|apply|connect|frame)/i.test(text)) page.problems.push(`CSP: ${text}`);
  });
  page.on('pageerror', (err) => page.problems.push(`script error: ${err.message}`));
  return page;
}

export async function signIn(page, url, key) {
  await page.goto(url + '/ui');
  await page.locator('#key').fill(key);
  await page.locator('#sign-in button[type=submit]').click();
}

/** Saves a screenshot under target/ui-screenshots/ (the README's come from there). */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** A chat completion through the gateway, as a client sends it. */
export async function chat(url, key, { model = 'cheap', tags, content = 'Say hi', headers = {} } = {}) {
  const body = { model, messages: [{ role: 'user', content }], max_tokens: 20 };
  if (tags) body.metadata = { tags };
  const r = await fetch(url + '/v1/chat/completions', {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}
