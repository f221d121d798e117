/**
 * --workers 2 end to end on the namespace lab: capture spread over two threads by PACKET_FANOUT,
 * requests handed back to the main thread's replay. Every request is replayed exactly once, drops
 * found by the workers' parsers reach mirror_replay_requests_dropped_total exactly, and /metrics
 * shows one sum over the workers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { compare, readRecords, testId } from '../../scripts/lab/compare.js';
import { Lab, PROD_V4, sleep, TEST_HOST } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;
const BIG = 40;

let lab: Lab;

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the end-to-end lab needs root for network namespaces');
  lab = new Lab(`mr-wrk-${process.pid}`);
  await lab.up();
  await lab.startRecorders();
  await lab.startDaemon(['--workers', '2', '--max-body-bytes', '4096']);
});

after(async () => {
  if (lab) await lab.down();
});

/** Two threads run a ring each: the daemon's process has them as tasks. */
function daemonThreads(): number {
  return fs.readdirSync(`/proc/${lab.daemon!.pid}/task`).length;
}

test('--workers 2: 10,000 keep-alive requests over 64 connections replayed once each; parser drops counted exactly', { skip, timeout: 300_000 }, async () => {
  assert.ok(daemonThreads() >= 2 + 1, 'the worker threads run');
  const res = await lab.client('load', ['--requests', '10000', '--connections', '64', '--max-seconds', '150'], 200_000);
  assert.deepEqual(res.failures.slice(0, 5), []);
  assert.equal(res.ids.length, 10_000);
  // Bodies over --max-body-bytes, one connection each so the hash spreads them over both workers.
  const body = path.join(lab.dir, 'big.bin');
  fs.writeFileSync(body, Buffer.alloc(8192, 0x61));
  for (let i = 0; i < BIG; i++) {
    const r = lab.run('client', 'curl', ['-s', '-o', '/dev/null', '-m', '10', '-H', `X-Test-Id: big-${i}`, '--data-binary', `@${body}`, `http://${PROD_V4}/big/${i}`]);
    assert.equal(r.status, 0, r.stderr);
  }
  await lab.waitForTest(60_000);
  // Counters arrive from the workers every 250 ms, and drops with their batch: wait for the sums.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && lab.metric('mirror_replay_requests_dropped_total', 'reason="http_body_too_large"') < BIG) await sleep(200);
  await sleep(600);

  const prod = readRecords(lab.prodLog);
  const testRecs = readRecords(lab.testLog);
  const c = compare(prod.filter((r) => !testId(r)?.startsWith('big-')), testRecs, { destinationHost: TEST_HOST, keepHost: false });
  assert.equal(prod.length, 10_000 + BIG);
  assert.deepEqual(c.missing.slice(0, 10), [], `${c.missing.length} lost`);
  assert.deepEqual(c.duplicated.slice(0, 10), []);
  assert.deepEqual(c.unexpected.slice(0, 10), []);
  assert.deepEqual(c.mismatches.slice(0, 3), []);
  assert.equal(c.matched, 10_000);

  const m = lab.metrics();
  const sum = (name: string, match = '') => [...m].filter(([k]) => (k === name || k.startsWith(`${name}{`)) && k.includes(match)).reduce((a, [, v]) => a + v, 0);
  assert.equal(sum('mirror_replay_requests_dropped_total', 'reason="http_body_too_large"'), BIG);
  assert.equal(sum('mirror_replay_requests_dropped_total'), BIG, 'nothing else dropped');
  assert.equal(sum('mirror_replay_requests_parsed_total'), 10_000);
  assert.equal(sum('mirror_replay_requests_replayed_total', 'status_class="2xx"'), 10_000);
  // One series per interface, summed over the workers: at least every frame of every request.
  const captureSeries = [...m.keys()].filter((k) => k.startsWith('mirror_replay_capture_packets_total{'));
  assert.deepEqual(captureSeries, ['mirror_replay_capture_packets_total{interface="vxlan0"}']);
  assert.ok(sum('mirror_replay_capture_packets_total') >= 10_000 + BIG);
  assert.equal(sum('mirror_replay_capture_kernel_drops_total'), 0);
  // Every connection was seen by exactly one worker: 64 load connections + one per big POST.
  assert.equal(sum('mirror_replay_reassembly_events_total', 'event="flows_created"'), 64 + BIG);
  assert.equal(sum('mirror_replay_reassembly_events_total', 'event="flows_midstream"'), 0);
});

test('--workers 2: /readyz while running; SIGTERM drains, exits 0', { skip, timeout: 60_000 }, async () => {
  assert.equal(lab.run('adapter', 'curl', ['-sf', '-m', '2', 'http://127.0.0.1:9464/readyz']).status, 0);
  const code = await lab.stopDaemon();
  assert.equal(code, 0);
  const log = fs.readFileSync(lab.daemonLog, 'utf8');
  assert.doesNotMatch(log, /"level":(50|60)/, 'no error logged');
});
