/**
 * End to end on the namespace lab: real clients → production (whose NIC is mirrored by tc into
 * VXLAN) → kernel vxlan0 on the adapter → the daemon → the test environment. Asserts that the
 * test environment received exactly what production received, and that nothing is lost under
 * keep-alive load.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { byBehaviour, compare, readRecords } from '../../scripts/lab/compare.js';
import { Lab, TEST_HOST } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;

let lab: Lab;

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the end-to-end lab needs root for network namespaces');
  lab = new Lab(`mr-e2e-${process.pid}`);
  await lab.up();
  await lab.startRecorders();
  await lab.startDaemon();
});

after(async () => {
  if (lab) await lab.down();
});

test('a broad set of real client behaviours arrives byte-faithful, once each', { skip, timeout: 240_000 }, async () => {
  const res = await lab.client('behaviours');
  assert.deepEqual(res.failures, [], 'every client request got its answer from production');
  assert.ok(res.ids.length >= 150, `sent ${res.ids.length}`);
  await lab.waitForTest(30_000);
  const prod = readRecords(lab.prodLog);
  const test = readRecords(lab.testLog);
  const c = compare(prod, test, { destinationHost: TEST_HOST, keepHost: false });
  console.log(byBehaviour(prod, c).map((r) => `${r.behaviour.padEnd(20)} production ${String(r.production).padStart(4)}  test ${String(r.test).padStart(4)}`).join('\n'));
  assert.equal(prod.length, res.ids.length, 'production recorded every answered request');
  assert.deepEqual(c.missing, []);
  assert.deepEqual(c.duplicated, []);
  assert.deepEqual(c.unexpected, []);
  assert.deepEqual(c.mismatches, []);
  assert.equal(c.matched, prod.length);
  // Headers the replay adds, as the aws-samples replayer does, and nothing else.
  for (const t of test) {
    const names = t.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    assert.ok(names.includes('x-forwarded-for'));
    assert.ok(!names.includes('user-agent') || prod.some((p) => p.rawHeaders.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'user-agent' && p.url === t.url)));
  }
  assert.equal(lab.metric('mirror_replay_requests_dropped_total'), 0, 'clean traffic: nothing dropped');
  assert.equal(lab.metric('mirror_replay_requests_replayed_total', 'status_class="2xx"'), prod.length);
});

test('20,000 keep-alive requests over 64 connections: none lost, none duplicated', { skip, timeout: 300_000 }, async () => {
  const before = lab.daemonUsage();
  const prodBefore = lab.lines(lab.prodLog);
  const testBefore = lab.lines(lab.testLog);
  const droppedBefore = lab.metric('mirror_replay_requests_dropped_total');
  const res = await lab.client('load', ['--requests', '20000', '--connections', '64', '--max-seconds', '150'], 200_000);
  assert.deepEqual(res.failures.slice(0, 5), []);
  assert.equal(res.ids.length, 20_000);
  await lab.waitForTest(60_000);
  const usage = lab.daemonUsage();
  const prod = readRecords(lab.prodLog).slice(prodBefore);
  const test = readRecords(lab.testLog).slice(testBefore);
  const c = compare(prod, test, { destinationHost: TEST_HOST, keepHost: false });
  const kernelDrops = lab.metric('mirror_replay_capture_kernel_drops_total');
  const figures = {
    offeredRps: Math.round(res.rps),
    requests: res.ids.length,
    production: prod.length,
    test: test.length,
    lost: c.missing.length,
    duplicated: c.duplicated.length,
    daemonCpuSeconds: +(usage.cpuSeconds - before.cpuSeconds).toFixed(2),
    daemonPeakRssMiB: +usage.peakRssMiB.toFixed(1),
    kernelDrops,
    dropped: lab.metric('mirror_replay_requests_dropped_total') - droppedBefore,
  };
  console.log(`load figures: ${JSON.stringify(figures)}`);
  assert.equal(prod.length, 20_000);
  assert.deepEqual(c.missing.slice(0, 10), [], `${c.missing.length} lost`);
  assert.deepEqual(c.duplicated, []);
  assert.deepEqual(c.mismatches.slice(0, 3), []);
  assert.equal(figures.dropped, 0);
});

test('SIGTERM drains and exits 0', { skip, timeout: 30_000 }, async () => {
  const code = await lab.stopDaemon();
  assert.equal(code, 0);
});
