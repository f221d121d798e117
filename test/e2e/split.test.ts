/**
 * Two adapters behind a stand-in for the load balancer, in the namespace lab. Production has two
 * mirror sessions (two VXLAN sources: outer source 10.213.2.1 carries client 10.213.1.1's
 * connections with VNI 1, 10.213.2.3 client 10.213.1.11's with VNI 2; both directions). The lab's adapter namespace becomes the load balancer: tc on its eth0 redirects
 * each VXLAN datagram (u32 match + mirred redirect) to adapter A or adapter B, each a namespace
 * running the daemon with --compare against the one test environment.
 *
 * - Everything to A (one adapter) vs. each source to its own adapter (source-IP stickiness): the
 *   union of A's and B's shadow-testing results (metrics by route and result, diff logs, report)
 *   equals the single adapter's, and each adapter compared exactly its source's share.
 * - A split by direction (requests to A, answers to B, as a per-5-tuple balancer may do): doctor
 *   --compare on each adapter says that connections arrive in one direction only; with stickiness
 *   it says both directions arrive.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, PROD_V4, ROOT, sleep, TEST_HOST, type Role } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const VXLAN_UP = path.join(ROOT, 'scripts/vxlan-up.sh');
const BASE = `http://${PROD_V4}`;
const ROUTES = ['/broken', '/changed', '/extra', '/ok/:id'];
const ROUNDS = 5;
/** The two clients: each one's connections travel in its own mirror session. */
const CLIENTS = ['10.213.1.1', '10.213.1.11'];
const PER_ROUND = 8;
/** Each adapter decapsulates both sessions' VNIs. */
const INTERFACES = ['--interface', 'vxlan0', '--interface', 'vxlan1'];

let lab: Lab;
let A: Role;
let B: Role;

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the end-to-end lab needs root for network namespaces');
  lab = new Lab(`mr-spl-${process.pid}`);
  await lab.up();
  await lab.startRecorders(['--fault', '500:/broken', '--fault', 'body:/changed', '--fault', 'header:/extra']);
  twoSources();
  A = lab.addAdapter('a', '10.213.4.2/24', '10.213.4.1/24', 'lba');
  B = lab.addAdapter('b', '10.213.5.2/24', '10.213.5.1/24', 'lbb');
  balancer();
});

after(async () => {
  if (lab) await lab.down();
});

/** A second mirror session on production: outer source 10.213.2.3, for the second client's traffic. */
function twoSources(): void {
  lab.must('client', 'ip', ['addr', 'add', `${CLIENTS[1]}/24`, 'dev', 'eth0']);
  lab.must('prod', 'ip', ['addr', 'add', '10.213.2.3/24', 'dev', 'eth1']);
  // VNI 2: one namespace cannot hold two VXLAN devices with the same VNI and port (AWS gives each
  // session its own VNI unless told otherwise; the adapters decapsulate both).
  lab.must('prod', 'ip', ['link', 'add', 'mirror1', 'type', 'vxlan', 'id', '2', 'local', '10.213.2.3', 'remote', '10.213.2.2', 'dstport', '4789', 'dev', 'eth1']);
  lab.must('prod', 'ip', ['link', 'set', 'mirror1', 'mtu', '8951']);
  lab.must('prod', 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv6/conf/mirror1/disable_ipv6']);
  lab.must('prod', 'ip', ['link', 'set', 'mirror1', 'up']);
  // Replace the lab's mirror-everything rules with one session per client, both directions.
  for (const dir of ['ingress', 'egress']) lab.must('prod', 'tc', ['filter', 'del', 'dev', 'eth0', dir]);
  CLIENTS.forEach((client, i) => {
    const dev = `mirror${i}`;
    lab.must('prod', 'tc', ['filter', 'add', 'dev', 'eth0', 'ingress', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'src', `${client}/32`, 'action', 'mirred', 'egress', 'mirror', 'dev', dev]);
    lab.must('prod', 'tc', ['filter', 'add', 'dev', 'eth0', 'egress', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', `${client}/32`, 'action', 'mirred', 'egress', 'mirror', 'dev', dev]);
  });
}

/**
 * The lab's adapter namespace as the load balancer: it forwards replayed traffic between the
 * adapters and the test environment, and steer() picks where each VXLAN datagram goes. The
 * adapters take the datagrams as the balancer's own address (10.213.2.2, same MAC), as an NLB
 * target receives them addressed to itself.
 */
function balancer(): void {
  const mac = (JSON.parse(lab.must('adapter', 'ip', ['-j', 'link', 'show', 'eth0'])) as Array<{ address: string }>)[0].address;
  for (const r of [A, B]) {
    lab.must(r, 'ip', ['link', 'set', 'eth0', 'address', mac]);
    lab.must(r, 'ip', ['addr', 'add', '10.213.2.2/32', 'dev', 'eth0']);
    lab.must(r, 'bash', [VXLAN_UP, '--vni', '1', '--dev', 'eth0']);
    lab.must(r, 'bash', [VXLAN_UP, '--vni', '2', '--name', 'vxlan1', '--dev', 'eth0']);
  }
  lab.must('adapter', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  lab.must('test', 'ip', ['route', 'add', '10.213.4.0/24', 'via', '10.213.3.1']);
  lab.must('test', 'ip', ['route', 'add', '10.213.5.0/24', 'via', '10.213.3.1']);
  lab.must('adapter', 'tc', ['qdisc', 'add', 'dev', 'eth0', 'clsact']);
}

/** UDP to port 4789 (outer IPv4 without options); u32 matches only, as tc cannot mix them with `match ip`. */
const VXLAN = ['match', 'u8', '17', '0xff', 'at', '9', 'match', 'u16', '4789', '0xffff', 'at', '22'];
/** Outer source address: which mirror session sent the datagram. */
const FROM_SESSION = (hex: string) => ['match', 'u32', hex, '0xffffffff', 'at', '12'];
/** Inner source address = production (10.213.1.2): outer IPv4 20 + UDP 8 + VXLAN 8 + Ethernet 14 + 12. */
const FROM_PROD = ['match', 'u16', '0x0ad5', '0xffff', 'at', '62', 'match', 'u16', '0x0102', '0xffff', 'at', '64']; // u32 keys must be 4-aligned

/** How the balancer spreads VXLAN: all to A; by mirror source (stickiness); by direction (a split). */
function steer(mode: 'single' | 'source' | 'direction'): void {
  lab.run('adapter', 'tc', ['filter', 'del', 'dev', 'eth0', 'ingress']);
  const rule = (prio: number, match: string[], dev: string) =>
    lab.must('adapter', 'tc', ['filter', 'add', 'dev', 'eth0', 'ingress', 'protocol', 'ip', 'prio', String(prio), 'u32', ...VXLAN, ...match, 'action', 'mirred', 'egress', 'redirect', 'dev', dev]);
  if (mode === 'single') rule(1, [], 'lba');
  else if (mode === 'source') {
    rule(1, FROM_SESSION('0x0ad50201'), 'lba'); // 10.213.2.1
    rule(2, FROM_SESSION('0x0ad50203'), 'lbb'); // 10.213.2.3
  } else {
    rule(1, FROM_PROD, 'lbb');
    rule(2, [], 'lba');
  }
}

function curl(from: string, args: string[]): void {
  const r = lab.run('client', 'curl', ['-s', '-m', '10', '--interface', from, '-o', '/dev/null', '-w', '%{http_code}\n', ...args]);
  assert.equal(r.status, 0, `curl ${args.join(' ')}: ${r.stderr}`);
}

/** The same traffic every time: per client and round, 6 GETs on one connection, a HEAD, a POST; 3 of 8 broken. */
function traffic(): void {
  for (let i = 0; i < ROUNDS; i++) {
    for (const from of CLIENTS) {
      curl(from, [`${BASE}/ok/${i}?q=${i}`, `${BASE}/broken`, `${BASE}/ok/${i + 100}`, `${BASE}/changed?x=1`, `${BASE}/extra`, `${BASE}/ok/last`]);
      curl(from, ['-I', `${BASE}/ok/head`]);
      curl(from, ['-d', `{"n":${i}}`, '-H', 'Content-Type: application/json', `${BASE}/ok/post`]);
    }
  }
}

/** Shadow-testing series (by route and result) summed over `roles`, zeros left out. */
function results(roles: Role[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of roles) {
    for (const [k, v] of lab.metrics(r)) {
      if (!/^mirror_replay_responses_(compared|compared_by_route|noise)_total\{/.test(k) || v === 0) continue;
      out[k] = (out[k] ?? 0) + v;
    }
  }
  return Object.fromEntries(Object.entries(out).sort());
}

async function waitForCompared(roles: Role[], n: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let got = 0;
  while (Date.now() < deadline) {
    got = roles.reduce((s, r) => s + lab.metric('mirror_replay_responses_compared_total', '', r), 0);
    if (got >= n) break;
    await sleep(200);
  }
  await sleep(500); // nothing more may arrive
  return roles.reduce((s, r) => s + lab.metric('mirror_replay_responses_compared_total', '', r), 0);
}

/** Diff lines as comparable facts, sorted (a multiset). */
function diffFacts(files: string[]): string[] {
  const lines = files.flatMap((f) => fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)));
  return lines
    .filter((l) => l.kind === 'diff')
    .map((d) => `${d.method} ${d.path} ${d.result} ${JSON.stringify(d.status)} ${JSON.stringify(d.headerValues ?? {})}`)
    .sort();
}

function report(files: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [MAIN, 'report', ...files, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const routes = (j.topRoutes as Array<{ route: string }>).sort((x, y) => x.route.localeCompare(y.route));
  return { compared: j.compared, differences: j.differences, noise: j.noise, mismatchRate: j.mismatchRate, topRoutes: routes, badLines: j.badLines };
}

/** Runs the daemons on `roles` with --compare while `traffic()` runs; returns their results. */
async function runWith(roles: Role[], tag: string): Promise<{ results: Record<string, number>; each: number[]; logs: string[] }> {
  const logs = roles.map((r) => path.join(lab.dir, `${tag}-${r}.diff.jsonl`));
  const daemons = [];
  for (let i = 0; i < roles.length; i++) {
    daemons.push(await lab.startDaemon([...INTERFACES, '--diff-log', logs[i], ...ROUTES.flatMap((x) => ['--compare-route', x])], { role: roles[i], log: path.join(lab.dir, `${tag}-${roles[i]}.log`) }));
  }
  traffic();
  const total = ROUNDS * CLIENTS.length * PER_ROUND;
  const compared = await waitForCompared(roles, total, 30_000);
  const res = { results: results(roles), each: roles.map((r) => lab.metric('mirror_replay_responses_compared_total', '', r)), logs };
  for (const r of roles) assert.equal(lab.metric('mirror_replay_compare_active', '', r), 1, `${r}: comparing`);
  for (const d of daemons) assert.equal(await lab.stopDaemon(15_000, d), 0);
  assert.equal(compared, total, `${tag}: every request compared once`);
  return res;
}

test('each source on one adapter: the union of two adapters\' shadow-testing results equals one adapter\'s', { skip, timeout: 240_000 }, async () => {
  steer('single');
  const single = await runWith([A], 'single');
  steer('source');
  const split = await runWith([A, B], 'split');
  const share = ROUNDS * PER_ROUND;
  console.log(`single adapter: ${JSON.stringify(single.results)}`);
  console.log(`two adapters: A compared ${split.each[0]}, B ${split.each[1]}; union ${JSON.stringify(split.results)}`);
  assert.deepEqual(split.each, [share, share], 'each adapter compared its own source\'s requests');
  assert.deepEqual(split.results, single.results);
  assert.equal(single.results['mirror_replay_responses_compared_total{destination="http://10.213.3.2",result="match"}'], ROUNDS * CLIENTS.length * 5);
  assert.equal(Object.keys(single.results).some((k) => k.includes('unpaired')), false, 'nothing unpaired');
  assert.deepEqual(diffFacts(split.logs), diffFacts(single.logs));
  assert.equal(diffFacts(single.logs).length, ROUNDS * CLIENTS.length * 3);
  assert.deepEqual(report(split.logs), report(single.logs));
});

/** doctor --compare on `role` while the client sends load; its output. */
async function doctor(role: Role): Promise<string> {
  const load = lab.client('load', ['--requests', '100000', '--connections', '2', '--max-seconds', '5'], 60_000);
  await sleep(500);
  const p = spawn('ip', ['netns', 'exec', lab.ns(role), process.execPath, MAIN, 'doctor', ...INTERFACES, '--compare', '--seconds', '2', '--destination', `http://${TEST_HOST}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  await new Promise((r) => p.on('exit', r));
  await load;
  console.log(`${role}:\n${out.trimEnd()}`);
  return out;
}

test('a split by direction: doctor --compare on each adapter says one direction only, with the fix; stickiness: both', { skip, timeout: 120_000 }, async () => {
  steer('source');
  const ok = await doctor(A);
  assert.match(ok, /^ok +directions: both directions of \d+ of \d+ connections on port 80 arrive here/m);
  steer('direction');
  const a = await doctor(A);
  const b = await doctor(B);
  const l = a.split('\n').find((x) => /^warning +directions: --compare is on but (\d+) of \1 connections on port 80 arrive in one direction only \(\1 with requests and no answers, 0 with answers and no requests\)/.test(x));
  assert.ok(l, a);
  assert.match(l, /fix: mirror both directions .* keep each mirror source on one adapter \(NLB: source_ip stickiness/);
  assert.match(b, /^warning +directions: --compare is on but (\d+) of \1 connections on port 80 arrive in one direction only \(0 with requests and no answers, \1 with answers and no requests\)/m);
});
