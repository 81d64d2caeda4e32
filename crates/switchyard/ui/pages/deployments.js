// Deployments: each alias's deployments, healthy or not, the diagnosis with its exact remedy,
// cooldowns, the last probe, "probe now", and the IAM policy a Bedrock one needs.
import { api, get } from '../api.js';
import { h, when, ms, copyable, errorBox, append } from '../dom.js';

export async function render(root, ctx) {
  const data = await get('/deployments');
  if (!ctx.isCurrent()) return;
  const byAlias = new Map();
  for (const d of data.deployments) {
    if (!byAlias.has(d.model_name)) byAlias.set(d.model_name, []);
    byAlias.get(d.model_name).push(d);
  }
  // The summary follows every "probe now", so it never disagrees with the cards below it.
  const healthy = new Map(data.deployments.map((d) => [d.model_id, d.healthy]));
  const summary = h('span', {});
  const recount = () => {
    const unhealthy = [...healthy.values()].filter((ok) => !ok).length;
    summary.className = unhealthy ? 'badge bad' : 'badge ok';
    summary.textContent = unhealthy ? `${unhealthy} of ${healthy.size} unhealthy` : `${healthy.size} healthy`;
  };
  recount();
  const cardCtx = { ...ctx, probed: (fresh) => { healthy.set(fresh.model_id, fresh.healthy); recount(); } };
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Deployments'), summary),
  h('p', { class: 'muted' }, 'From the last probe and what traffic showed. "Probe now" asks the deployment "Say: WORKS" with a few tokens.'));
  for (const [alias, list] of byAlias) {
    root.append(h('section', { class: 'alias' }, h('h2', {}, alias),
      h('div', { class: 'deployments' }, list.map((d) => deployment(d, cardCtx)))));
  }
}

function deployment(d, ctx) {
  const box = h('article', { class: `deployment ${d.healthy ? 'healthy' : 'unhealthy'}`, 'data-id': d.model_id });
  fill(box, d, ctx);
  return box;
}

function fill(box, d, ctx) {
  box.className = `deployment ${d.healthy ? 'healthy' : 'unhealthy'}`;
  const status = d.healthy ? (d.probed ? 'healthy' : 'not probed yet') : 'unhealthy';
  const facts = [
    ['Provider', d.provider], ['Model', d.model], ['Base URL', d.api_base], ['Region', d.aws_region_name],
    ['Last probe', d.last_checked_at ? `${when(d.last_checked_at)}${d.latency_ms !== undefined ? ' · ' + ms(d.latency_ms) : ''}` : 'never'],
    ['Cooldown', d.cooldown_remaining_seconds ? `${d.cooldown_remaining_seconds} s left${d.cooled_by ? ' (cooled by ' + d.cooled_by + ')' : ''}` : null],
    ['Failed', d.failed_at ? `${when(d.failed_at)} (seen by ${d.seen_by})` : null],
    ['Probe', d.health_check],
  ].filter(([, v]) => v !== undefined && v !== null);
  const probeButton = ctx.session.role === 'admin'
    ? h('button', { type: 'button', class: 'small probe', on: { click: async () => {
      probeButton.disabled = true;
      probeButton.textContent = 'Probing…';
      try {
        const fresh = await api('POST', `/deployments/${encodeURIComponent(d.model_id)}/probe`);
        box.replaceChildren();
        fill(box, fresh, ctx);
        ctx.probed?.(fresh);
      } catch (err) {
        box.append(errorBox(err));
        probeButton.disabled = false;
        probeButton.textContent = 'Probe now';
      }
    } } }, 'Probe now')
    : null;
  const diag = d.diagnosis;
  append(box,
    h('header', {}, h('span', { class: `badge ${d.healthy ? 'ok' : 'bad'}` }, status), ' ',
      h('code', {}, d.model_id), probeButton),
    h('dl', {}, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    d.error ? h('div', { class: 'diagnosis' },
      h('p', {}, h('span', { class: 'badge bad' }, diag ? diag.id : d.error_class), ' ', h('span', { class: 'error-text' }, d.error)),
      diag ? h('p', {}, h('b', {}, 'Cause: '), diag.cause) : null,
      diag && diag.remedy ? [h('p', {}, h('b', {}, 'Remedy:')), copyable(diag.remedy)] : null) : null,
    d.iam_policy ? h('details', { class: 'policy' }, h('summary', {}, 'Minimal IAM policy'),
      d.iam_policy.notes?.length ? h('ul', {}, d.iam_policy.notes.map((n) => h('li', { class: 'muted' }, n))) : null,
      copyable(JSON.stringify(d.iam_policy.document, null, 2))) : null);
}
