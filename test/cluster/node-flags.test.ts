import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { NODE_FLAGS } from '../../cluster/node-flags.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFile(new URL(path, root), 'utf8');

test('every launcher of a node passes NODE_FLAGS: npm start, scripts/cluster.sh, the k8s manifests, the documented commands', async () => {
  const start = (JSON.parse(await read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
  const cluster = await read('scripts/cluster.sh');
  const docs = (await read('docs/cluster.md')) + (await read('README.md'));
  const k8s = await read('deploy/k8s/chorus.yaml');
  const k8sOptions = [...k8s.matchAll(/name: NODE_OPTIONS\s+value: (.+)/g)].map((m) => m[1]!.trim());
  const deployments = (k8s.match(/^kind: (Deployment|StatefulSet)/gm) ?? []).length;
  assert.ok(deployments > 0);
  assert.equal(k8sOptions.length, deployments, 'one NODE_OPTIONS per node workload');
  for (const flag of NODE_FLAGS) {
    assert.ok(start.split(' ').includes(flag), `npm start lacks ${flag}: ${start}`);
    assert.match(cluster, new RegExp(`node [^\\n]*${flag}[^\\n]*cluster/main\\.ts`), `scripts/cluster.sh lacks ${flag}`);
    for (const m of docs.matchAll(/`node ([^`]*)cluster\/main\.ts`/g)) assert.ok(m[1]!.split(/\s+/).includes(flag), `a documented command lacks ${flag}: ${m[0]}`);
    for (const o of k8sOptions) assert.ok(o.split(' ').includes(flag), `k8s NODE_OPTIONS lacks ${flag}: ${o}`);
  }
});

test('NODE_FLAGS take effect: a process started with them has the larger young generation', () => {
  const probe = "const v8=require('v8');console.log(v8.getHeapSpaceStatistics().find(s=>s.space_name==='new_space').space_available_size+v8.getHeapSpaceStatistics().find(s=>s.space_name==='new_space').space_used_size)";
  const grow = "let k=[];for(let i=0;i<3e6;i++){k.push({a:i});if(k.length>2e5)k=[]};";
  const max = (flags: readonly string[]) => Number(execFileSync(process.execPath, [...flags, '-e', grow + probe], { encoding: 'utf8' }).trim());
  assert.ok(max(NODE_FLAGS) > 1.5 * max([]), 'young generation not larger with NODE_FLAGS');
});
