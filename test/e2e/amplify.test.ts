/**
 * Amplification, per-route rate caps and offline shadow testing, end to end in the namespace lab.
 * Live: --percentage 300 must give the test environment three of every production request, none
 * lost, the copy marker telling them apart; 250 by header must be sticky per header value; route
 * caps drop per rule and count it. Offline: a recording of both directions made with tcpdump on
 * the adapter's vxlan0, replayed with --pcap FILE --compare against a test environment that
 * misbehaves on three paths, must name exactly those routes, as live comparing does
 * (test/e2e/compare.test.ts), and copies must not disturb it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readRecords, testId, type RecordLine } from '../../scripts/lab/compare.js';
import { Lab, PROD_V4, ROOT, TEST_HOST, sleep } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const hasTcpdump = spawnSync('tcpdump', ['--version']).status === 0;
const skip = !isRoot && process.env.CI !== 'true' ? 'needs root for network namespaces (run as root, or in CI)' : false;
const DAEMON = path.join(ROOT, 'dist/src/cli/main.js');
const BASE = `http://${PROD_V4}`;
const ROUTES = ['/broken', '/changed', '/extra', '/ok/:id'];
let lab: Lab;

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the lab needs root for network namespaces');
  lab = new Lab(`mr-amp-${process.pid}`);
  await lab.up();
  // The faulty paths are only ever asked for by the offline-compare test.
  await lab.startRecorders(['--fault', '500:/broken', '--fault', 'body:/changed', '--fault', 'header:/extra']);
});
after(async () => {
  if (lab) await lab.down();
});

const header = (r: RecordLine, name: string) => {
  for (let i = 0; i < r.rawHeaders.length; i += 2) if (r.rawHeaders[i].toLowerCase() === name.toLowerCase()) return r.rawHeaders[i + 1];
  return undefined;
};

/** Waits until `file` has `n` lines, or nothing has moved for 5 s, or the time is up. */
async function waitForLines(file: string, n: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const got = lab.lines(file);
    if (got >= n) return got;
    if (got !== last) [last, since] = [got, Date.now()];
    else if (Date.now() - since > 5_000) return got;
    await sleep(100);
  }
  return lab.lines(file);
}

/** Production's and the test environment's records while `fn` runs against a daemon with `args`; waits for `factor` × production. */
async function phase(args: string[], factor: number, fn: () => Promise<void>): Promise<{ prod: RecordLine[]; test: RecordLine[] }> {
  const p0 = lab.lines(lab.prodLog);
  const t0 = lab.lines(lab.testLog);
  await lab.startDaemon(args);
  await fn();
  const produced = lab.lines(lab.prodLog) - p0;
  await waitForLines(lab.testLog, t0 + Math.ceil(produced * factor), 60_000);
  await sleep(500); // anything beyond the expected count would show up now
  return { prod: readRecords(lab.prodLog).slice(p0), test: readRecords(lab.testLog).slice(t0) };
}

/** Copy marks per X-Test-Id in the test environment's records ('-': the original). */
function marksById(rs: RecordLine[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const r of rs) {
    const id = testId(r)!;
    m.set(id, [...(m.get(id) ?? []), header(r, 'x-mirror-copy') ?? '-'].sort());
  }
  return m;
}

test('--percentage 300 live: the test environment gets 3x production, none lost, copies marked 1 and 2', { skip, timeout: 240_000 }, async () => {
  const N = 3000;
  const { prod, test } = await phase(['--percentage', '300', '--copy-header', 'X-Mirror-Copy'], 3, async () => {
    const r = await lab.client('load', ['--requests', String(N), '--connections', '16', '--max-seconds', '120'], 150_000);
    assert.equal(r.ids.length, N);
  });
  const copies = lab.metric('mirror_replay_copies_total');
  const replayed = lab.metric('mirror_replay_requests_replayed_total');
  const dropped = lab.metric('mirror_replay_requests_dropped_total');
  console.log(`percentage 300: production ${prod.length}, test got ${test.length} (${(test.length / prod.length).toFixed(3)}x), copies ${copies}, replayed ${replayed}, dropped ${dropped}`);
  assert.equal(prod.length, N);
  assert.ok(Math.abs(test.length - 3 * N) <= 0.01 * 3 * N, `${test.length} of ${3 * N}`);
  assert.equal(test.length, 3 * N, 'in fact every send arrived');
  assert.equal(copies, 2 * N);
  assert.equal(replayed, 3 * N);
  assert.equal(dropped, 0);
  const marks = marksById(test);
  assert.equal(marks.size, N);
  for (const [id, m] of marks) assert.deepEqual(m, ['-', '1', '2'], id);
  // The original is production's request as at 100%: no marker, the same fields in the same order.
  const prodById = new Map(prod.map((r) => [testId(r)!, r]));
  for (const r of test.filter((t) => header(t, 'x-mirror-copy') === undefined).slice(0, 200)) {
    const p = prodById.get(testId(r)!)!;
    assert.equal(r.url, p.url);
    assert.equal(r.bodySha, p.bodySha);
  }
  assert.equal(await lab.stopDaemon(), 0);
});

test('--percentage 250 by header: each header value always gets the same number of sends, 2 or 3', { skip, timeout: 240_000 }, async () => {
  const N = 2000;
  const { prod, test } = await phase(['--percentage', '250', '--percentage-by', 'header', '--percentage-by-header', 'X-User', '--copy-header', 'X-Mirror-Copy'], 2.5, async () => {
    await lab.client('load', ['--requests', String(N), '--connections', '16', '--vary-header', 'X-User', '--values', '40']);
  });
  assert.equal(prod.length, N);
  const sends = new Map<string, Set<number>>();
  const marks = marksById(test);
  for (const p of prod) {
    const m = marks.get(testId(p)!) ?? [];
    const v = header(p, 'x-user')!;
    sends.set(v, (sends.get(v) ?? new Set()).add(m.length));
    assert.deepEqual(m, ['-', '1', '2', '3'].slice(0, m.length), 'marks are 1..n-1 on the copies');
  }
  let three = 0;
  for (const [v, s] of sends) {
    assert.equal(s.size, 1, `value ${v}: send counts ${[...s]}`);
    const [n] = s;
    assert.ok(n === 2 || n === 3, `value ${v}: ${n}`);
    if (n === 3) three++;
  }
  const total = test.length;
  console.log(`percentage 250 by header: ${three} of ${sends.size} values sent 3 times, the rest twice; test got ${total} for ${N} (${(total / N).toFixed(2)}x)`);
  assert.ok(three > 5 && three < 35, String(three));
  assert.equal(lab.metric('mirror_replay_copies_total'), total - N);
  assert.equal(lab.metric('mirror_replay_requests_dropped_total'), 0);
  assert.equal(await lab.stopDaemon(), 0);
});

test('per-route caps: each rule caps its routes, drops counted as rate_limited and per rule; other routes untouched', { skip, timeout: 120_000 }, async () => {
  let seconds = 0;
  const { prod, test } = await phase(['--route-rate', '5:^/api/', '--route-rate', '3:^/static/'], 1, async () => {
    seconds = (await lab.client('policy')).seconds;
  });
  const kind = (r: RecordLine) => testId(r)!.replace(/-\d+$/, '');
  const count = (rs: RecordLine[], k: (x: string) => boolean) => rs.filter((r) => k(kind(r))).length;
  const isApi = (k: string) => k.startsWith('api-') || k === 'bot';
  const api = { prod: count(prod, isApi), test: count(test, isApi) };
  const stat = { prod: count(prod, (k) => k === 'static'), test: count(test, (k) => k === 'static') };
  const old = { prod: count(prod, (k) => k === 'old'), test: count(test, (k) => k === 'old') };
  const byRule = { api: lab.metric('mirror_replay_rate_limited_total', 'rule="^/api/"'), static: lab.metric('mirror_replay_rate_limited_total', 'rule="^/static/"') };
  const limited = lab.metric('mirror_replay_requests_dropped_total', 'reason="rate_limited"');
  console.log(`route caps over ${seconds.toFixed(2)} s: /api/ ${api.test} of ${api.prod}, /static/ ${stat.test} of ${stat.prod}, /v1/ ${old.test} of ${old.prod}; rate_limited ${limited} = ${JSON.stringify(byRule)}`);
  assert.deepEqual([api.prod, stat.prod, old.prod], [80, 20, 20]);
  // A bucket holds one second's worth and refills while the burst lasts.
  assert.ok(api.test >= 5 && api.test <= 5 + Math.ceil(5 * (seconds + 1)), String(api.test));
  assert.ok(stat.test >= 3 && stat.test <= 3 + Math.ceil(3 * (seconds + 1)), String(stat.test));
  assert.equal(old.test, 20, 'a route no rule matches is not capped');
  assert.equal(byRule.api, api.prod - api.test);
  assert.equal(byRule.static, stat.prod - stat.test);
  assert.equal(limited, byRule.api + byRule.static);
  assert.equal(lab.metric('mirror_replay_requests_dropped_total'), limited, 'nothing else dropped');
  assert.equal(await lab.stopDaemon(), 0);
});

function curl(args: string[]): void {
  const r = lab.run('client', 'curl', ['-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}\n', ...args]);
  assert.equal(r.status, 0, `curl ${args.join(' ')}: ${r.stderr}`);
}

/** As test/e2e/compare.test.ts: per round 8 requests, 3 of them on paths the test environment breaks. */
function sendRound(i: number): void {
  curl([`${BASE}/ok/${i}?q=${i}`, `${BASE}/broken`, `${BASE}/ok/${i + 100}`, `${BASE}/changed?x=1`, `${BASE}/extra`, `${BASE}/ok/last`]);
  curl(['-I', `${BASE}/ok/head`]);
  curl(['-d', `{"n":${i}}`, '-H', 'Content-Type: application/json', '-H', 'Authorization: Bearer secret-token', `${BASE}/ok/post`]);
}

/** Records both directions on the adapter's vxlan0 with tcpdump while `fn` runs; no daemon meanwhile. */
async function recordWithTcpdump(file: string, fn: () => void): Promise<void> {
  const p: ChildProcess = lab.spawnIn('adapter', 'tcpdump', ['-i', 'vxlan0', '-U', '-s', '0', '-w', file, 'tcp port 80']);
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  const deadline = Date.now() + 10_000;
  while (!err.includes('listening on') && Date.now() < deadline) await sleep(50);
  assert.ok(err.includes('listening on'), `tcpdump did not start: ${err}`);
  fn();
  await sleep(1000); // the last segments reach the mirror
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await exited;
  assert.match(err, /(\d+) packets captured/);
}

function offline(args: string[]): { status: number | null; summary: Record<string, number>; stderr: string } {
  const r = lab.run('adapter', process.execPath, [DAEMON, '--destination', `http://${TEST_HOST}`, '--metrics-port', '0', '--log-level', 'warn', ...args], 120_000);
  const last = r.stdout.trim().split('\n').pop() ?? '{}';
  return { status: r.status, summary: JSON.parse(last) as Record<string, number>, stderr: r.stderr };
}

test('offline shadow testing: a tcpdump recording of both directions, --pcap FILE --compare, names exactly the changed routes', { skip: skip || (!hasTcpdump && 'needs tcpdump (apt-get install tcpdump)'), timeout: 180_000 }, async () => {
  const ROUNDS = 10;
  const total = ROUNDS * 8;
  const pcap = path.join(lab.dir, 'both.pcap');
  await recordWithTcpdump(pcap, () => {
    for (let i = 0; i < ROUNDS; i++) sendRound(i);
  });
  const read = spawnSync('tcpdump', ['-r', pcap, '-nn', '-q'], { encoding: 'utf8' });
  const toClient = read.stdout.split('\n').filter((l) => l.includes(`${PROD_V4}.80 >`)).length;
  assert.ok(toClient > total, `the recording holds the server's side: ${toClient} server-to-client packets`);

  const diffLog = path.join(lab.dir, 'offline-diff.jsonl');
  const t0 = lab.lines(lab.testLog);
  const run = offline(['--pcap', pcap, '--diff-log', diffLog, '--diff-body-bytes', '64', ...ROUTES.flatMap((r) => ['--compare-route', r])]);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.summary.parsed, total);
  assert.equal(run.summary.dropped, 0);
  assert.equal(lab.lines(lab.testLog) - t0, total);
  const lines = fs.readFileSync(diffLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const diffs = lines.filter((l) => l.kind === 'diff');
  const counts = lines.filter((l) => l.kind === 'stats').reduce((acc: Record<string, number>, l) => {
    for (const [k, v] of Object.entries(l.counts[`http://${TEST_HOST}`] ?? {})) acc[k] = (acc[k] ?? 0) + (v as number);
    return acc;
  }, {});
  console.log(`offline compare: ${toClient} server-to-client packets recorded; results ${JSON.stringify(counts)}`);
  assert.deepEqual(counts, { match: ROUNDS * 5, status_mismatch: ROUNDS, body_mismatch: ROUNDS, header_mismatch: ROUNDS });
  assert.equal(diffs.length, ROUNDS * 3);
  for (const d of diffs) {
    const want = { '/broken': 'status_mismatch', '/changed': 'body_mismatch', '/extra': 'header_mismatch' }[d.path as string];
    assert.equal(d.result, want, JSON.stringify(d));
    if (d.result === 'status_mismatch') assert.deepEqual(d.status, { production: 200, test: 500 });
    if (d.result === 'body_mismatch') assert.deepEqual([d.body.production.snippet, d.body.test.snippet], ['ok', 'changed']);
    if (d.result === 'header_mismatch') assert.deepEqual(d.headerValues, { 'x-shadow-extra': { production: null, test: '1' } });
  }
  const report = spawnSync(process.execPath, [DAEMON, 'report', diffLog, '--json'], { encoding: 'utf8' });
  assert.equal(report.status, 0, report.stderr);
  const rep = JSON.parse(report.stdout);
  assert.deepEqual(rep.topRoutes.map((t: { route: string }) => t.route).sort(), ['/broken', '/changed', '/extra']);
  assert.equal(rep.mismatchRate, 3 / 8);

  // Amplified from the file: copies reach the test environment, only originals are compared.
  const ampLog = path.join(lab.dir, 'offline-amp.jsonl');
  const t1 = lab.lines(lab.testLog);
  const amp = offline(['--pcap', pcap, '--diff-log', ampLog, '--percentage', '300', '--copy-header', 'X-Mirror-Copy']);
  assert.equal(amp.status, 0, amp.stderr);
  assert.equal(amp.summary.replayed, 3 * total);
  assert.equal(lab.lines(lab.testLog) - t1, 3 * total);
  const ampDiffs = fs.readFileSync(ampLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.kind === 'diff');
  assert.equal(ampDiffs.length, ROUNDS * 3, 'copies are not compared');
});
