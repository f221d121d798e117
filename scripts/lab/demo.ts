/**
 * `npm run lab`: builds the namespace look-alike of AWS mirroring, sends a short mix of real
 * traffic to production, and prints side by side what production and the test environment
 * received, with the daemon's key counters. Always tears down, also on Ctrl-C or failure.
 */
import { byBehaviour, compare, readRecords, testId } from './compare.js';
import { Lab, TEST_HOST } from './harness.js';

const lab = new Lab(process.env.MR_LAB_PREFIX ?? 'mr-lab');
let stopping = false;
const teardown = async (code: number) => {
  if (stopping) return;
  stopping = true;
  await lab.down();
  process.exit(code);
};
process.on('SIGINT', () => void teardown(130));
process.on('SIGTERM', () => void teardown(143));

const say = (s: string) => process.stdout.write(`${s}\n`);

try {
  say(`lab: namespaces ${['client', 'prod', 'adapter', 'test'].map((r) => lab.ns(r as 'client')).join(', ')}`);
  await lab.up();
  say('lab: production 10.213.1.2:80 (mirrored by tc into VXLAN VNI 1) → adapter vxlan0 → mirror-replay → test 10.213.3.2:80');
  await lab.startRecorders();
  await lab.startDaemon();
  say('lab: sending real client traffic (keep-alive, pipelined, parallel, chunked, 100-continue, 2 MiB, HTTP/1.0, IPv6, curl) ...');
  const res = await lab.client('behaviours');
  await lab.waitForTest(20_000);
  const prod = readRecords(lab.prodLog);
  const test = readRecords(lab.testLog);
  const c = compare(prod, test, { destinationHost: TEST_HOST, keepHost: false });

  say('\nSample requests           production                               test environment');
  const testById = new Map(test.map((t) => [testId(t), t]));
  const shown = new Set<string>();
  for (const p of prod) {
    const b = (testId(p) ?? '').replace(/-\d+$/, '');
    if (shown.has(b)) continue;
    shown.add(b);
    const t = testById.get(testId(p));
    const fmt = (r: typeof p | undefined) => (r ? `${r.method} ${r.url.length > 24 ? `${r.url.slice(0, 21)}...` : r.url} ${r.bodyLen}B ${r.bodySha.slice(0, 8)}` : '(missing)');
    say(`${b.padEnd(18)} ${fmt(p).padEnd(48)} ${fmt(t)}`);
  }
  say('\nBehaviour            production  test (faithful)');
  for (const r of byBehaviour(prod, c)) say(`${r.behaviour.padEnd(20)} ${String(r.production).padStart(10)}  ${String(r.test).padStart(4)}`);
  say(`\nTotal: production ${prod.length}, test ${test.length}, faithful ${c.matched}, missing ${c.missing.length}, duplicated ${c.duplicated.length}, altered ${c.mismatches.length}`);
  for (const m of c.mismatches.slice(0, 5)) say(`  altered ${m.id} ${m.what}: ${JSON.stringify(m.prod).slice(0, 100)} vs ${JSON.stringify(m.test).slice(0, 100)}`);
  say('\nmirror-replay counters (from /metrics):');
  const metrics = lab.metrics();
  for (const [k, v] of metrics) {
    if (!k.startsWith('mirror_replay_') || k.includes('_bucket') || k.includes('duration_seconds')) continue;
    if (v === 0 && !k.startsWith('mirror_replay_requests_dropped_total')) continue;
    if (k.startsWith('mirror_replay_requests_dropped_total') && v === 0) continue;
    say(`  ${k} ${v}`);
  }
  const dropped = lab.metric('mirror_replay_requests_dropped_total');
  say(`  mirror_replay_requests_dropped_total (all reasons) ${dropped}`);
  const ok = res.failures.length === 0 && c.missing.length === 0 && c.mismatches.length === 0 && c.duplicated.length === 0;
  say(ok ? '\nlab: OK: the test environment received exactly what production received.' : '\nlab: MISMATCH: see above.');
  await teardown(ok ? 0 : 1);
} catch (e) {
  process.stderr.write(`lab: ${(e as Error).message}\n`);
  await teardown(1);
}
