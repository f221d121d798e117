/**
 * Decapsulation without the kernel, in the namespace lab: the adapter has no vxlan0 at all and
 * the daemon reads eth0 with --encap-interface. Production's real tc mirror sends VNI 1 (VXLAN);
 * a second session's VXLAN (VNI 2) and GWLB-style GENEVE around VXLAN (VNI 3) are injected into
 * the same interface. Every request arrives byte-faithful at a real HTTP server, each session is
 * counted under its VNI, and malformed tunnel headers are counted as anomalies while the daemon
 * stays up.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { compare, comparableHeaders, readRecords } from '../../scripts/lab/compare.js';
import { Lab, PROD_V4, ROOT, TEST_HOST, sleep } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;
const VXLAN_INJECT = path.join(ROOT, 'dist/test/ops/vxlan-inject.js');
const GENEVE_INJECT = path.join(ROOT, 'dist/test/ops/geneve-inject.js');
const ADAPTER = '10.213.2.2';
const INJECTED = 20;

let lab: Lab;

async function exited(p: ReturnType<Lab['spawnIn']>): Promise<number | null> {
  return new Promise((r) => (p.exitCode !== null ? r(p.exitCode) : p.on('exit', r)));
}

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(100);
}

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the lab needs root for network namespaces');
  lab = new Lab(`mr-encap-${process.pid}`);
  await lab.up({ vxlan0: false });
  await lab.startRecorders();
  await lab.startDaemon(['--encap-interface', 'eth0']);
});

after(async () => {
  if (lab) await lab.down();
});

test('no VXLAN interface on the adapter: the daemon reads eth0 itself', { skip }, () => {
  const links = lab.run('adapter', 'ip', ['-d', 'link', 'show']).stdout;
  assert.doesNotMatch(links, /vxlan/, 'no vxlan link of any name');
  assert.match(links, /eth0/);
});

test('VXLAN of two VNIs and GWLB GENEVE around VXLAN are replayed byte-faithfully, each counted under its VNI', { skip, timeout: 240_000 }, async () => {
  const vni2 = lab.spawnIn('prod', process.execPath, [VXLAN_INJECT, '--vni', '2', '--to', ADAPTER, '--server', PROD_V4, '--count', String(INJECTED), '--prefix', '/vni2']);
  const gwlb = lab.spawnIn('prod', process.execPath, [GENEVE_INJECT, '--vni', '3', '--to', ADAPTER, '--server', PROD_V4, '--count', String(INJECTED), '--prefix', '/gwlb3']);
  const res = await lab.client('behaviours');
  assert.deepEqual(res.failures, []);
  assert.equal(await exited(vni2), 0);
  assert.equal(await exited(gwlb), 0);
  const prodCount = () => readRecords(lab.prodLog).length;
  await waitUntil(() => readRecords(lab.testLog).length >= prodCount() + 2 * INJECTED, 30_000);
  const all = readRecords(lab.testLog);
  const injected = (prefix: string) => all.filter((r) => r.url.startsWith(`${prefix}/`));
  // VNI 1: production's own mirror, compared request by request with what production received.
  const mirrored = all.filter((r) => !r.url.startsWith('/vni2/') && !r.url.startsWith('/gwlb3/'));
  const c = compare(readRecords(lab.prodLog), mirrored, { destinationHost: TEST_HOST, keepHost: false });
  assert.deepEqual([c.missing, c.duplicated, c.unexpected, c.mismatches], [[], [], [], []]);
  assert.equal(c.matched, res.ids.length);
  // VNI 2 and 3: what the injector sent, byte for byte (Host is the destination's).
  for (const prefix of ['/vni2', '/gwlb3']) {
    const got = injected(prefix);
    assert.deepEqual(got.map((r) => r.url).sort(), Array.from({ length: INJECTED }, (_, i) => `${prefix}/${i}`).sort(), prefix);
    for (const r of got) {
      assert.equal(r.method, 'GET');
      assert.deepEqual(comparableHeaders(r), [`Host: ${TEST_HOST}`, 'User-Agent: vxlan-inject'], prefix);
      assert.equal(r.bodyLen, 0);
    }
  }
  const perVni = (v: string) => lab.metric('mirror_replay_decap_frames_total', `vni="${v}"`);
  console.log(`decapsulated frames: vni 1 ${perVni('1')}, vni 2 ${perVni('2')}, vni 3 ${perVni('3')}`);
  assert.ok(perVni('1') >= res.ids.length, `VNI 1: ${perVni('1')}`);
  assert.equal(perVni('2'), 3 * INJECTED, 'SYN, request, FIN per injected connection');
  assert.equal(perVni('3'), 3 * INJECTED);
  assert.equal(lab.metric('mirror_replay_decode_anomalies_total'), 0, 'clean tunnels: no anomaly');
  assert.equal(lab.metric('mirror_replay_requests_dropped_total'), 0);
});

test('malformed GENEVE/VXLAN/UDP headers are counted as named anomalies; the daemon stays up and goes on', { skip, timeout: 120_000 }, async () => {
  const times = 3;
  const bad = lab.spawnIn('prod', process.execPath, [GENEVE_INJECT, '--malformed', '--to', ADAPTER, '--server', PROD_V4, '--count', String(times)]);
  assert.equal(await exited(bad), 0);
  const names = ['vxlan_bad_flags', 'vxlan_truncated', 'geneve_truncated', 'geneve_bad_version', 'geneve_bad_option_length', 'geneve_bad_protocol', 'udp_bad_length'];
  const anomaly = (n: string) => lab.metric('mirror_replay_decode_anomalies_total', `anomaly="${n}"`);
  await waitUntil(() => names.every((n) => anomaly(n) >= times), 10_000);
  for (const n of names) assert.equal(anomaly(n), times, n);
  assert.equal(lab.daemon!.exitCode, null, 'the daemon is still running');
  // And it still replays: another GWLB batch arrives (VNI 4: the injector reuses its client ports and
  // sequence numbers, so on VNI 3 these would be retransmissions of connections already replayed).
  const before = readRecords(lab.testLog).length;
  const again = lab.spawnIn('prod', process.execPath, [GENEVE_INJECT, '--vni', '4', '--to', ADAPTER, '--server', PROD_V4, '--count', '5', '--prefix', '/after']);
  assert.equal(await exited(again), 0);
  await waitUntil(() => readRecords(lab.testLog).length >= before + 5, 15_000);
  assert.equal(readRecords(lab.testLog).filter((r) => r.url.startsWith('/after/')).length, 5);
  assert.equal(lab.metric('mirror_replay_decap_frames_total', 'vni="4"'), 15);
});

test('doctor --encap-interface: every session that arrives is named, and --vni is checked against them', { skip, timeout: 120_000 }, async () => {
  const main = path.join(ROOT, 'dist/src/cli/main.js');
  const doc = lab.spawnIn('adapter', process.execPath, [main, 'doctor', '--encap-interface', 'eth0', '--vni', '1', '--vni', '5', '--seconds', '3']);
  let out = '';
  doc.stdout!.on('data', (d: Buffer) => (out += d));
  doc.stderr!.on('data', (d: Buffer) => (out += d));
  await sleep(700);
  const vni6 = lab.spawnIn('prod', process.execPath, [VXLAN_INJECT, '--vni', '6', '--to', ADAPTER, '--server', PROD_V4, '--count', '5', '--prefix', '/doc6']);
  const gwlb = lab.spawnIn('prod', process.execPath, [GENEVE_INJECT, '--vni', '7', '--to', ADAPTER, '--server', PROD_V4, '--count', '5', '--prefix', '/doc7']);
  const load = lab.client('load', ['--requests', '100000', '--connections', '1', '--max-seconds', '1.5'], 60_000);
  assert.equal(await exited(vni6), 0);
  assert.equal(await exited(gwlb), 0);
  await load;
  const code = await exited(doc);
  console.log(out.trimEnd());
  assert.equal(code, 0, 'warnings only');
  assert.match(out, /^ok +interface eth0: eth0 is up .*taken apart by mirror-replay/m);
  assert.match(out, /^ok +traffic eth0: \d+ tunnelled frames arrived on eth0 .*VNI 1 \(\d+\).*/m);
  assert.match(out, /^ok +vni: mirror session VNI 1 arrives \(\d+ frames\) and is kept by --vni 1$/m);
  assert.match(out, /^warning vni: VNI 6 arrives \(15 frames\) but is not in --vni 1,5/m);
  assert.match(out, /^warning vni: VNI 7 arrives \(15 frames\) but is not in --vni 1,5/m);
  assert.match(out, /^warning vni: --vni 5 is kept but no frame with VNI 5 arrived/m);
  assert.match(out, /^ok +port 80: \d+ connections on port 80 began in plain text/m);
  assert.doesNotMatch(out, /interface vxlan0/, 'no vxlan0 expected with --encap-interface alone');
});
