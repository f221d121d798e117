/**
 * The replay policy and fault isolation, end to end in the namespace lab: sampling, filters,
 * rewrites and scrubbing, and destinations that refuse or never answer next to a healthy one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readRecords, testId, type RecordLine } from '../../scripts/lab/compare.js';
import { Lab, TEST_HOST, sleep } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI !== 'true' ? 'needs root for network namespaces (run as root, or in CI)' : false;
let lab: Lab;

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the lab needs root for network namespaces');
  lab = new Lab(`mr-pol-${process.pid}`);
  await lab.up();
  await lab.startRecorders(['--listen', `${TEST_HOST}:81`, '--blackhole', `${TEST_HOST}:83`]);
});
after(async () => {
  if (lab) await lab.down();
});

/** Runs `fn` with a daemon started with `args`; returns the records production and test got meanwhile. */
async function phase(args: string[], fn: () => Promise<void>, destinations?: string[]): Promise<{ prod: RecordLine[]; test: RecordLine[] }> {
  const p0 = lab.lines(lab.prodLog);
  const t0 = lab.lines(lab.testLog);
  await lab.startDaemon(args, { destinations });
  await fn();
  await lab.waitForTest(20_000);
  return { prod: readRecords(lab.prodLog).slice(p0), test: readRecords(lab.testLog).slice(t0) };
}
const header = (r: RecordLine, name: string) => {
  for (let i = 0; i < r.rawHeaders.length; i += 2) if (r.rawHeaders[i].toLowerCase() === name.toLowerCase()) return r.rawHeaders[i + 1];
  return undefined;
};

test('--percentage 25 replays 20-30% of 4,000 requests, the rest counted sampled_out', { skip, timeout: 120_000 }, async () => {
  const { prod, test } = await phase(['--percentage', '25'], async () => {
    const r = await lab.client('load', ['--requests', '4000', '--connections', '16']);
    assert.equal(r.ids.length, 4000);
  });
  assert.equal(prod.length, 4000);
  const share = test.length / 4000;
  console.log(`percentage 25: replayed ${test.length} of 4000 (${(share * 100).toFixed(1)}%)`);
  assert.ok(share >= 0.2 && share <= 0.3, `${share}`);
  assert.equal(lab.metric('mirror_replay_requests_dropped_total', 'reason="sampled_out"'), 4000 - test.length);
  assert.equal(await lab.stopDaemon(), 0);
});

test('--percentage-by header: every request sharing a header value gets the same decision', { skip, timeout: 120_000 }, async () => {
  const { prod, test } = await phase(['--percentage', '50', '--percentage-by', 'header', '--percentage-by-header', 'X-User'], async () => {
    await lab.client('load', ['--requests', '2000', '--connections', '16', '--vary-header', 'X-User', '--values', '40']);
  });
  const byValue = (rs: RecordLine[]) => rs.reduce((m, r) => m.set(header(r, 'x-user')!, (m.get(header(r, 'x-user')!) ?? 0) + 1), new Map<string, number>());
  const p = byValue(prod);
  const t = byValue(test);
  let inCount = 0;
  for (const [v, n] of p) {
    const got = t.get(v) ?? 0;
    assert.ok(got === 0 || got === n, `value ${v}: ${got} of ${n}`);
    if (got) inCount++;
  }
  console.log(`percentage-by header: ${inCount} of ${p.size} values replayed, each all or nothing`);
  assert.ok(inCount > 5 && inCount < 35, String(inCount));
  assert.equal(await lab.stopDaemon(), 0);
});

test('filters, rewrites, scrubbing and the marker header do what they say', { skip, timeout: 120_000 }, async () => {
  const args = [
    '--http-disallow-method', 'DELETE',
    '--http-allow-url', '^/(api|v1)/',
    '--http-disallow-header', 'User-Agent: bot',
    '--http-remove-header', 'Authorization', '--http-remove-header', 'Cookie',
    '--http-set-header', 'X-Env: test',
    '--http-rewrite-url', '^/v1/user/([^/]+)/ping:/v2/user/$1/ping',
    '--mark-header', 'X-Mirror-Replay',
  ];
  const { prod, test } = await phase(args, async () => {
    await lab.client('policy');
  });
  assert.equal(prod.length, 120);
  const kinds = (rs: RecordLine[]) => rs.map((r) => testId(r)!.replace(/-\d+$/, '')).sort();
  assert.deepEqual([...new Set(kinds(test))], ['api-get', 'api-post', 'old']);
  assert.equal(test.length, 60);
  for (const r of test) {
    assert.equal(header(r, 'authorization'), undefined, 'Authorization scrubbed');
    assert.equal(header(r, 'cookie'), undefined, 'Cookie scrubbed');
    assert.equal(header(r, 'x-mirror-replay'), '1');
    if (testId(r)!.startsWith('api-get')) assert.equal(header(r, 'x-env'), 'test');
    if (testId(r)!.startsWith('old')) assert.match(r.url, /^\/v2\/user\/\d+\/ping$/);
    assert.ok(!JSON.stringify(r.rawHeaders).includes('secret'), 'no credential reaches the test environment');
  }
  assert.equal(lab.metric('mirror_replay_requests_dropped_total', 'reason="filtered"'), 60);
  assert.equal(await lab.stopDaemon(), 0);
});

test('one destination refusing, one healthy: the healthy one gets all 20,000; refusals counted; RSS bounded', { skip, timeout: 240_000 }, async () => {
  const refused = `http://${TEST_HOST}:82`;
  const { prod, test } = await phase([], async () => {
    const r = await lab.client('load', ['--requests', '20000', '--connections', '64', '--max-seconds', '150'], 200_000);
    assert.equal(r.ids.length, 20000);
  }, [`http://${TEST_HOST}`, refused]);
  const usage = lab.daemonUsage();
  const connectErrors = lab.metric('mirror_replay_destination_dropped_total', `destination="${refused}",reason="connect_error"`);
  console.log(`refusing+healthy: production ${prod.length}, healthy got ${test.length}, refused counted ${connectErrors}, daemon peak RSS ${usage.peakRssMiB.toFixed(1)} MiB, CPU ${usage.cpuSeconds.toFixed(2)} s`);
  assert.equal(prod.length, 20000);
  assert.equal(test.length, 20000);
  assert.equal(connectErrors, 20000);
  assert.ok(usage.peakRssMiB < 400, `peak RSS ${usage.peakRssMiB} MiB`);
  assert.equal(await lab.stopDaemon(), 0);
});

test('a destination that never answers: its queue stays at the bound, timeouts and queue_full counted, the others keep getting requests', { skip, timeout: 240_000 }, async () => {
  const hole = `http://${TEST_HOST}:83`;
  let maxDepth = 0;
  // Limits for the hung destination only, in its URL: the healthy one keeps the defaults.
  const { test } = await phase([], async () => {
    const load = lab.client('load', ['--requests', '5000', '--connections', '16', '--max-seconds', '100'], 150_000);
    const sampling = (async () => {
      for (let i = 0; i < 200 && lab.daemon?.exitCode === null; i++) {
        maxDepth = Math.max(maxDepth, lab.metric('mirror_replay_replay_queue_depth', `destination="${hole}"`));
        await sleep(100);
        if (i > 20 && (await Promise.race([load.then(() => true), sleep(0).then(() => false)]))) break;
      }
    })();
    const r = await load;
    await sampling;
    assert.equal(r.ids.length, 5000);
  }, [`http://${TEST_HOST}:81`, `${hole}?max-queue=300&timeout=1s`]);
  const timeouts = lab.metric('mirror_replay_destination_dropped_total', `destination="${hole}",reason="timeout"`);
  const full = lab.metric('mirror_replay_destination_dropped_total', `destination="${hole}",reason="queue_full"`);
  const healthyStats = [...lab.metrics()].filter(([k, v]) => v > 0 && k.includes(':81"') && !k.includes('bucket')).map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(`never-answering: healthy got ${test.length} (${healthyStats}), hole timeouts ${timeouts}, queue_full ${full}, max queue depth seen ${maxDepth}`);
  assert.equal(test.length, 5000);
  assert.ok(maxDepth <= 300, String(maxDepth));
  assert.ok(timeouts > 0);
  assert.ok(full > 0);
  // Afterwards, still replaying to the healthy destination.
  const before = lab.lines(lab.testLog);
  await lab.client('load', ['--requests', '200', '--connections', '4']);
  await lab.waitForTest(20_000);
  assert.equal(lab.lines(lab.testLog) - before, 200);
  assert.equal(await lab.stopDaemon(), 0);
});
