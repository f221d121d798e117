/**
 * Operations in the namespace lab: two mirror sessions (VNI 1 from production's tc mirror, VNI 2
 * injected as a second session would send it) captured at once, the NLB health-check port,
 * SIGHUP reloading the policy from --config, and SIGTERM in the middle of a load run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readRecords } from '../../scripts/lab/compare.js';
import { Lab, METRICS, PROD_V4, ROOT, TEST_HOST, sleep } from '../../scripts/lab/harness.js';
import { REPLAY_DROP_REASONS } from '../../src/replay/outcome.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;
const VXLAN_UP = path.join(ROOT, 'scripts/vxlan-up.sh');
const INJECT = path.join(ROOT, 'dist/test/ops/vxlan-inject.js');
const HEALTH_PORT = 9465;
const DRAIN_MS = 3000;

let lab: Lab;
let configFile: string;

async function startDaemon(): Promise<void> {
  const args = [path.join(ROOT, 'dist/src/cli/main.js'), '--config', configFile, '--destination', `http://${TEST_HOST}`, '--interface', 'vxlan0', '--interface', 'vxlan1',
    '--metrics-host', '127.0.0.1', '--metrics-port', '9464', '--health-check-port', String(HEALTH_PORT), '--drain-timeout', `${DRAIN_MS}ms`, '--log-level', 'info'];
  lab.daemon = lab.spawnIn('adapter', process.execPath, args, lab.daemonLog);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (lab.daemon.exitCode !== null) throw new Error(`daemon exited: ${fs.readFileSync(lab.daemonLog, 'utf8')}`);
    if (lab.run('adapter', 'curl', ['-sf', '-m', '2', `${METRICS}/readyz`]).status === 0) return;
    await sleep(200);
  }
  throw new Error(`daemon not healthy: ${fs.readFileSync(lab.daemonLog, 'utf8')}`);
}

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(100);
}

const testRecords = () => readRecords(lab.testLog);

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the lab needs root for network namespaces');
  lab = new Lab(`mr-ops-${process.pid}`);
  await lab.up();
  const r = lab.run('adapter', 'bash', [VXLAN_UP, '--vni', '2', '--name', 'vxlan1', '--dev', 'eth0']);
  assert.equal(r.status, 0, r.stderr);
  await lab.startRecorders();
  configFile = path.join(lab.dir, 'config.yaml');
  fs.writeFileSync(configFile, 'percentage: 100\n');
  await startDaemon();
});

after(async () => {
  if (lab) await lab.down();
});

test('two VXLAN sessions (VNI 1 and VNI 2) are captured at once and both feed replays', { skip, timeout: 120_000 }, async () => {
  const inject = lab.spawnIn('prod', process.execPath, [INJECT, '--vni', '2', '--to', '10.213.2.2', '--server', PROD_V4, '--count', '20', '--prefix', '/vni2']);
  const res = await lab.client('load', ['--requests', '300', '--connections', '8', '--max-seconds', '60'], 90_000);
  assert.equal(res.ids.length, 300);
  assert.equal(await new Promise((r) => (inject.exitCode !== null ? r(inject.exitCode) : inject.on('exit', r))), 0);
  await waitUntil(() => testRecords().length >= 320, 30_000);
  const recs = testRecords();
  const vni2 = recs.filter((r) => r.url.startsWith('/vni2/'));
  assert.equal(vni2.length, 20, 'every request of the VNI 2 session was replayed');
  assert.equal(recs.length - vni2.length, 300, 'every request of the VNI 1 session was replayed');
  const v0 = lab.metric('mirror_replay_capture_packets_total', 'interface="vxlan0"');
  const v1 = lab.metric('mirror_replay_capture_packets_total', 'interface="vxlan1"');
  console.log(`capture packets: vxlan0 ${v0}, vxlan1 ${v1}`);
  assert.ok(v0 > 0 && v1 >= 60, `vxlan0 ${v0}, vxlan1 ${v1}`);
  assert.equal(lab.metric('mirror_replay_requests_dropped_total'), 0);
});

test('--health-check-port accepts TCP connections while healthy', { skip }, () => {
  const r = lab.run('adapter', 'bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${HEALTH_PORT}`]);
  assert.equal(r.status, 0, r.stderr);
  const closed = lab.run('adapter', 'bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${HEALTH_PORT + 1}`]);
  assert.notEqual(closed.status, 0, 'a port nobody listens on is refused (the probe itself works)');
});

test('SIGHUP re-reads --config and swaps the policy in the same process', { skip, timeout: 120_000 }, async () => {
  const pid = lab.daemon!.pid!;
  const sampledBefore = lab.metric('mirror_replay_requests_dropped_total', 'reason="sampled_out"');
  const replayedBefore = lab.metric('mirror_replay_requests_replayed_total');
  fs.writeFileSync(configFile, 'percentage: 0\n');
  process.kill(pid, 'SIGHUP');
  await waitUntil(() => fs.readFileSync(lab.daemonLog, 'utf8').includes('reload: replay policy replaced'), 10_000);
  await lab.client('load', ['--requests', '100', '--connections', '4', '--max-seconds', '60'], 90_000);
  await waitUntil(() => lab.metric('mirror_replay_requests_dropped_total', 'reason="sampled_out"') - sampledBefore >= 100, 20_000);
  assert.equal(lab.metric('mirror_replay_requests_dropped_total', 'reason="sampled_out"') - sampledBefore, 100);
  assert.equal(lab.metric('mirror_replay_requests_replayed_total'), replayedBefore);
  fs.writeFileSync(configFile, 'percentage: 100\n');
  process.kill(pid, 'SIGHUP');
  await waitUntil(() => fs.readFileSync(lab.daemonLog, 'utf8').split('reload: replay policy replaced').length === 3, 10_000);
  await lab.client('load', ['--requests', '100', '--connections', '4', '--max-seconds', '60'], 90_000);
  await waitUntil(() => lab.metric('mirror_replay_requests_replayed_total') - replayedBefore >= 100, 20_000);
  assert.equal(lab.metric('mirror_replay_requests_replayed_total') - replayedBefore, 100);
  assert.equal(lab.daemon!.exitCode, null, 'same process throughout');
});

test('SIGTERM during a load run exits 0 within the drain timeout; every request is replayed or counted', { skip, timeout: 180_000 }, async () => {
  const parsedBefore = lab.metric('mirror_replay_requests_parsed_total');
  const load = lab.client('load', ['--requests', '20000', '--connections', '32', '--max-seconds', '30'], 120_000);
  await waitUntil(() => lab.metric('mirror_replay_requests_parsed_total') - parsedBefore > 1000, 30_000);
  const t0 = Date.now();
  const code = await lab.stopDaemon(DRAIN_MS + 10_000);
  const exitMs = Date.now() - t0;
  await load;
  assert.equal(code, 0);
  const stopped = fs.readFileSync(lab.daemonLog, 'utf8').split('\n').filter((l) => l.includes('"msg":"stopped"')).map((l) => JSON.parse(l) as { parsed: number; replayed: number; dropped: number; droppedByReason: Record<string, number> }).pop();
  assert.ok(stopped, 'the exit summary was logged');
  const replayStage = REPLAY_DROP_REASONS.reduce((a, r) => a + (stopped.droppedByReason[r] ?? 0), 0);
  console.log(`SIGTERM under load: ${JSON.stringify({ exitMs, drainTimeoutMs: DRAIN_MS, ...stopped, replayStageDrops: replayStage })}`);
  assert.equal(stopped.parsed, stopped.replayed + replayStage, 'every parsed request was replayed or counted as dropped');
  assert.ok(testRecords().length >= stopped.replayed, 'the test environment got at least every request counted as replayed');
});
