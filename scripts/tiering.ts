/**
 * The tiering job from the command line: asks a node's admin endpoint for the
 * plan (dry run, the default) or to apply it, and prints the plan with the
 * estimated monthly saving.
 *
 *   npm run tiering -- --url http://127.0.0.1:8080 --token $TOKEN [--apply] [--now 2027-03-01] [--json]
 *
 * --token (or CHORUS_ADMIN_TOKEN): an operator token (docs/cluster.md); when
 * absent and CHORUS_AUTH_SECRET is set, one is signed from it. --now plans for
 * another instant (what-if). A cron job running `--apply` daily is the job.
 */
import { parseArgs } from 'node:util';
import { TokenSigner } from '../cluster/edge/auth.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.CHORUS_URL ?? 'http://127.0.0.1:8080' },
    token: { type: 'string' },
    apply: { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
    now: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
let token = values.token ?? process.env.CHORUS_ADMIN_TOKEN;
if (!token && process.env.CHORUS_AUTH_SECRET) token = new TokenSigner(process.env.CHORUS_AUTH_SECRET).sign({ sub: 'tiering', ws: ['*'], kind: 'operator' }, 600);
if (!token) {
  console.error('tiering: an operator token is required (--token, CHORUS_ADMIN_TOKEN or CHORUS_AUTH_SECRET)');
  process.exit(2);
}
const apply = values.apply && !values['dry-run'];
const q = values.now ? `?now=${encodeURIComponent(values.now)}` : '';
const res = await fetch(`${values.url.replace(/\/$/, '')}/admin/files/tiering${q}`, { method: apply ? 'POST' : 'GET', headers: { authorization: `Bearer ${token}` } });
const body = (await res.json().catch(() => ({}))) as { text?: string; code?: string; message?: string };
if (!res.ok) {
  console.error(`tiering: ${body.code ?? res.status}: ${body.message ?? 'failed'}`);
  process.exit(1);
}
console.log(values.json ? JSON.stringify(body, null, 2) : body.text);
