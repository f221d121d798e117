/**
 * HTTP/2 and gRPC end to end in the namespace lab (#14's bar): real grpc-js servers in production
 * and in the test environment, real clients (grpc-js, node:http2, curl --http2-prior-knowledge) in
 * the client namespace, production's NIC mirrored both ways with tc mirred, the daemon replaying
 * to `?protocol=h2c` destinations.
 *
 * - gRPC: hundreds of unary and server-streaming calls over three long-lived channels, streams
 *   interleaved, each with metadata; the test server receives every call once, with the same
 *   method path, metadata and message bytes.
 * - h2c: curl and node:http2 requests, a body over 1 MiB and requests ending in trailers, replayed
 *   field for field; production's answers (with a trailer) read from the mirror match the twin's.
 * - A connection open before the daemon starts is counted as http2_midstream; nothing of it is replayed.
 * - --compare with a test server that fails one method: the diff log and `report` name it.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, PROD_V4, ROOT, sleep, TEST_HOST, type Role } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;
const GRPC = path.join(ROOT, 'dist/scripts/lab/grpc.js');
const H2 = path.join(ROOT, 'dist/scripts/lab/h2.js');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const GRPC_PORT = 50051;
/** A second test server, which fails /mrlab.Lab/Check (for --compare). */
const GRPC_FAILING_PORT = 50052;
const H2_PORT = 8080;

let lab: Lab;
let prodGrpc: string;
let testGrpc: string;
let failingGrpc: string;
let prodH2: string;
let testH2: string;

interface GrpcRecord {
  method: string;
  metadata: Record<string, string[]>;
  message: string;
}
interface H2Record {
  rawHeaders: string[];
  bodyLen: number;
  bodySha: string;
  rawTrailers: string[];
}

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the end-to-end lab needs root for network namespaces');
  lab = new Lab(`mr-h2-${process.pid}`);
  prodGrpc = path.join(lab.dir, 'prod-grpc.jsonl');
  testGrpc = path.join(lab.dir, 'test-grpc.jsonl');
  failingGrpc = path.join(lab.dir, 'failing-grpc.jsonl');
  prodH2 = path.join(lab.dir, 'prod-h2.jsonl');
  testH2 = path.join(lab.dir, 'test-h2.jsonl');
  await lab.up();
  await Promise.all([
    serve('prod', GRPC, ['server', '--listen', `${PROD_V4}:${GRPC_PORT}`, '--out', prodGrpc]),
    serve('test', GRPC, ['server', '--listen', `${TEST_HOST}:${GRPC_PORT}`, '--out', testGrpc]),
    serve('test', GRPC, ['server', '--listen', `${TEST_HOST}:${GRPC_FAILING_PORT}`, '--out', failingGrpc, '--fail', '/mrlab.Lab/Check=5']),
    serve('prod', H2, ['server', '--listen', `${PROD_V4}:${H2_PORT}`, '--out', prodH2]),
    serve('test', H2, ['server', '--listen', `${TEST_HOST}:${H2_PORT}`, '--out', testH2]),
  ]);
});

// A test that fails leaves its daemon running: stop it, or the next test would scrape its /metrics.
afterEach(async () => {
  if (lab) await lab.stopDaemon();
});

after(async () => {
  if (lab) await lab.down();
});

/** Starts a lab server script in a namespace and waits for its "ready" line. */
function serve(role: Role, script: string, args: string[]): Promise<void> {
  const p = lab.spawnIn(role, process.execPath, [script, ...args]);
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${script} ${args.join(' ')}: not ready in 10 s: ${out}`)), 10_000);
    const on = (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.on('exit', (c) => reject(new Error(`${script} exited ${c}: ${out}`)));
  });
}

/** Runs a lab client script in the client namespace; resolves with its JSON line. */
function runClient<T>(script: string, args: string[], timeoutMs = 120_000): { proc: ChildProcess; done: Promise<T> } {
  const proc = lab.spawnIn('client', process.execPath, [script, ...args]);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const done = new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (c) => {
      clearTimeout(t);
      if (c === 0) resolve(JSON.parse(out.trim().split('\n').pop()!) as T);
      else reject(new Error(`${script} exited ${c}: ${err}${out}`));
    });
  });
  return { proc, done };
}

interface GrpcResult {
  ok: number;
  failed: number;
  messages: number;
  failures: string[];
}

function grpcClient(args: string[]): Promise<GrpcResult> {
  return runClient<GrpcResult>(GRPC, ['client', '--target', `${PROD_V4}:${GRPC_PORT}`, ...args]).done;
}

function records<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  const s = fs.readFileSync(file, 'utf8');
  return s.slice(0, s.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

/** Waits until `file` has at least `n` lines and stops growing, or the time is up. */
async function waitForLines(file: string, n: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let got = 0;
  while (Date.now() < deadline) {
    got = lab.lines(file);
    if (got >= n) break;
    await sleep(200);
  }
  await sleep(500); // a duplicate would land now
  return lab.lines(file);
}

const callId = (r: GrpcRecord) => r.metadata['x-call-id']?.[0] ?? '(none)';

/** The metadata a replay must carry unchanged (X-Forwarded-* are the replay's own additions). */
function comparableMetadata(md: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(md).filter(([k]) => !k.startsWith('x-forwarded-')).sort(([a], [b]) => a.localeCompare(b)));
}

/** Every production call arrived at the test server exactly once, with the same method, metadata and bytes. */
function assertSameCalls(prod: GrpcRecord[], test: GrpcRecord[]): void {
  const byId = new Map<string, GrpcRecord[]>();
  for (const t of test) byId.set(callId(t), [...(byId.get(callId(t)) ?? []), t]);
  const problems: string[] = [];
  for (const p of prod) {
    const got = byId.get(callId(p)) ?? [];
    if (got.length !== 1) problems.push(`${callId(p)}: received ${got.length} times`);
    else if (got[0].method !== p.method) problems.push(`${callId(p)}: method ${got[0].method} vs ${p.method}`);
    else if (got[0].message !== p.message) problems.push(`${callId(p)}: message bytes differ`);
    else if (JSON.stringify(comparableMetadata(got[0].metadata)) !== JSON.stringify(comparableMetadata(p.metadata))) problems.push(`${callId(p)}: metadata ${JSON.stringify(got[0].metadata)} vs ${JSON.stringify(p.metadata)}`);
    byId.delete(callId(p));
  }
  for (const id of byId.keys()) problems.push(`${id}: replayed but not in production's record`);
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problem(s)`);
}

function dropped(reason?: string): number {
  return lab.metric('mirror_replay_requests_dropped_total', reason ? `reason="${reason}"` : '');
}

test('gRPC: unary and server-streaming calls over long-lived channels all reach the test server once, byte for byte', { skip, timeout: 240_000 }, async () => {
  await lab.startDaemon(['--filter-request-port', String(GRPC_PORT)], { destinations: [`http://${TEST_HOST}:${GRPC_PORT}?protocol=h2c`] });
  const UNARY = 300;
  const STREAMS = 60;
  const r = await grpcClient(['--channels', '3', '--unary', String(UNARY), '--streams', String(STREAMS), '--concurrency', '12', '--prefix', 'a']);
  assert.deepEqual({ ok: r.ok, failed: r.failed }, { ok: UNARY + STREAMS, failed: 0 }, r.failures.join('; '));
  const calls = UNARY + STREAMS;
  await waitForLines(testGrpc, calls, 30_000);
  const prod = records<GrpcRecord>(prodGrpc).filter((x) => callId(x).startsWith('a-'));
  const test_ = records<GrpcRecord>(testGrpc).filter((x) => callId(x).startsWith('a-'));
  assert.equal(prod.length, calls);
  assert.equal(new Set(prod.map((p) => p.method)).size, 2, 'Echo and List');
  assertSameCalls(prod, test_);
  const figures = { parsed: lab.metric('mirror_replay_requests_parsed_total'), replayed: lab.metric('mirror_replay_requests_replayed_total'), dropped: dropped() };
  console.log(`gRPC figures (${calls} calls, ${r.messages} messages): ${JSON.stringify(figures)}`);
  assert.deepEqual(figures, { parsed: calls, replayed: calls, dropped: 0 });
  assert.equal(await lab.stopDaemon(), 0);
});

test('h2c: curl --http2-prior-knowledge and node:http2 requests replayed field for field, a body over 1 MiB and trailers included', { skip, timeout: 240_000 }, async () => {
  // With --compare: the test server is production's twin, so every answer (trailers included) must match.
  await lab.startDaemon(['--filter-request-port', String(H2_PORT), '--compare'], { destinations: [`http://${TEST_HOST}:${H2_PORT}?protocol=h2c`] });
  const base = `http://${PROD_V4}:${H2_PORT}`;
  const curl = (args: string[]) => {
    const r = lab.run('client', 'curl', ['-sS', '--http2-prior-knowledge', '-m', '20', '-o', '/dev/null', '-w', '%{http_version} %{http_code}\n', ...args]);
    assert.equal(r.status, 0, `curl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim().split('\n');
  };
  // One request per connection: curl 7.88 (Debian 12) fails the second request it sends on a
  // prior-knowledge connection to node:http2 ("Error in the HTTP2 framing layer"), mirror or not.
  for (const p of ['/curl/1', '/curl/2?x=1', '/curl/3']) assert.deepEqual(curl(['-H', 'x-test-id: curl-get', `${base}${p}`]), ['2 200']);
  const big = path.join(lab.dir, 'big.bin');
  fs.writeFileSync(big, randomBytes(1.25 * 1024 * 1024));
  assert.deepEqual(curl(['-H', 'x-test-id: curl-big', '-H', 'content-type: application/octet-stream', '--data-binary', `@${big}`, `${base}/curl/upload`]), ['2 200']);
  const node = await runClient<{ ids: string[]; failures: string[] }>(H2, ['client', '--url', base, '--requests', '40', '--prefix', 'node']).done;
  assert.deepEqual(node.failures, []);
  const total = 3 + 1 + 41;
  await waitForLines(testH2, total, 30_000);
  const key = (r: H2Record) => {
    const f = (n: string) => r.rawHeaders[r.rawHeaders.indexOf(n) + 1];
    return `${f(':path')} ${f('x-test-id')}`;
  };
  const comparable = (r: H2Record) => ({
    headers: r.rawHeaders.filter((_, i) => i % 2 === 0).map((n, i) => `${n}: ${r.rawHeaders[2 * i + 1]}`).filter((l) => !/^(:authority|host|x-forwarded-[a-z]+):/.test(l)),
    bodyLen: r.bodyLen,
    bodySha: r.bodySha,
    trailers: r.rawTrailers,
  });
  const prod = records<H2Record>(prodH2);
  const test_ = records<H2Record>(testH2);
  assert.equal(prod.length, total);
  const seen = new Map<string, number>();
  for (const t of test_) seen.set(key(t), (seen.get(key(t)) ?? 0) + 1);
  for (const p of prod) {
    assert.equal(seen.get(key(p)), 1, `${key(p)} replayed once`);
    const t = test_.find((x) => key(x) === key(p))!;
    assert.deepEqual(comparable(t), comparable(p), key(p));
  }
  assert.equal(test_.length, total, 'nothing else replayed');
  const upload = test_.find((t) => key(t).startsWith('/curl/upload'))!;
  assert.equal(upload.bodySha, createHash('sha256').update(fs.readFileSync(big)).digest('hex'));
  const nodeBig = test_.find((t) => key(t).endsWith('node-big'))!;
  assert.ok(nodeBig.bodyLen > 1024 * 1024);
  assert.deepEqual(nodeBig.rawTrailers, ['x-body-sha256', nodeBig.bodySha], 'trailers after a 1.5 MiB body');
  assert.equal(test_.filter((t) => t.rawTrailers.length > 0).length, 11, 'ten trailer requests and the big one');
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && lab.metric('mirror_replay_responses_compared_total') < total) await sleep(200);
  const figures = {
    parsed: lab.metric('mirror_replay_requests_parsed_total'),
    replayed: lab.metric('mirror_replay_requests_replayed_total'),
    dropped: dropped(),
    compared: lab.metric('mirror_replay_responses_compared_by_protocol_total', 'protocol="h2"'),
    match: lab.metric('mirror_replay_responses_compared_by_protocol_total', 'protocol="h2",result="match"'),
  };
  console.log(`h2c figures (${total} requests): ${JSON.stringify(figures)}`);
  assert.deepEqual(figures, { parsed: total, replayed: total, dropped: 0, compared: total, match: total });
  assert.equal(await lab.stopDaemon(), 0);
});

test('a gRPC connection open before the daemon starts is counted as http2_midstream; nothing of it is replayed', { skip, timeout: 240_000 }, async () => {
  // One channel, one call at a time, for about 12 s: it spans the daemon's start.
  const early = runClient<GrpcResult>(GRPC, ['client', '--target', `${PROD_V4}:${GRPC_PORT}`, '--channels', '1', '--unary', '200', '--concurrency', '1', '--interval-ms', '60', '--prefix', 'early', '--max-seconds', '40']);
  await sleep(1500);
  await lab.startDaemon(['--filter-request-port', String(GRPC_PORT)], { destinations: [`http://${TEST_HOST}:${GRPC_PORT}?protocol=h2c`] });
  const fresh = await grpcClient(['--channels', '1', '--unary', '20', '--streams', '5', '--prefix', 'fresh']);
  const kept = await early.done;
  assert.equal(kept.failed, 0);
  assert.equal(fresh.ok, 25);
  await waitForLines(testGrpc, 0, 3000);
  await sleep(2000);
  const test_ = records<GrpcRecord>(testGrpc);
  const figures = {
    earlyReplayed: test_.filter((t) => callId(t).startsWith('early-')).length,
    freshReplayed: test_.filter((t) => callId(t).startsWith('fresh-')).length,
    midstream: dropped('http2_midstream'),
    parsed: lab.metric('mirror_replay_requests_parsed_total'),
    skippedBytes: lab.metric('mirror_replay_stream_bytes_skipped_total', 'reason="http_midstream_skipped"'),
  };
  console.log(`midstream figures: ${JSON.stringify(figures)}`);
  assert.equal(figures.earlyReplayed, 0, 'nothing of the midstream connection replayed');
  assert.equal(figures.freshReplayed, 25, 'a connection seen from its start is');
  assert.ok(figures.midstream >= 1, 'the midstream connection is counted under http2_midstream');
  assert.ok(figures.midstream <= kept.ok, `at most one count per call the connection carried (${kept.ok}), not ${figures.midstream}`);
  assert.equal(figures.parsed, 25);
  assert.equal(await lab.stopDaemon(), 0);
});

test('--compare: a test server that fails one gRPC method; the diff log and report name the method and both statuses', { skip, timeout: 240_000 }, async () => {
  const diffLog = path.join(lab.dir, 'grpc-diff.jsonl');
  await lab.startDaemon(['--filter-request-port', String(GRPC_PORT), '--diff-log', diffLog], { destinations: [`http://${TEST_HOST}:${GRPC_FAILING_PORT}?protocol=h2c`] });
  const UNARY = 60;
  const STREAMS = 20;
  const CHECKS = 30;
  const r = await grpcClient(['--channels', '2', '--unary', String(UNARY), '--streams', String(STREAMS), '--checks', String(CHECKS), '--prefix', 'd']);
  assert.equal(r.failed, 0, r.failures.join('; '));
  const total = UNARY + STREAMS + CHECKS;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && lab.metric('mirror_replay_responses_compared_total') < total) await sleep(200);
  const m = (result: string) => lab.metric('mirror_replay_responses_compared_total', `result="${result}"`);
  const figures = { compared: lab.metric('mirror_replay_responses_compared_total'), match: m('match'), trailer_mismatch: m('trailer_mismatch'), unpaired: m('unpaired'), grpc: lab.metric('mirror_replay_responses_compared_by_protocol_total', 'protocol="grpc"') };
  console.log(`gRPC compare figures: ${JSON.stringify(figures)}`);
  assert.deepEqual(figures, { compared: total, match: UNARY + STREAMS, trailer_mismatch: CHECKS, unpaired: 0, grpc: total });
  assert.equal(await lab.stopDaemon(), 0);

  const diffs = records<{ kind: string; route: string; result: string; grpc?: { method: string; production: { code: string }; test: { code: string; message: string } } }>(diffLog).filter((l) => l.kind === 'diff');
  assert.equal(diffs.length, CHECKS);
  for (const d of diffs) {
    assert.equal(d.route, '/mrlab.Lab/Check');
    assert.equal(d.result, 'trailer_mismatch');
    assert.equal(d.grpc?.method, '/mrlab.Lab/Check');
    assert.equal(d.grpc?.production.code, '0');
    assert.equal(d.grpc?.test.code, '5');
    assert.match(d.grpc?.test.message ?? '', /fails here/);
  }
  const json = spawnSync(process.execPath, [MAIN, 'report', diffLog, '--json'], { encoding: 'utf8' });
  assert.equal(json.status, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  assert.deepEqual(report.topRoutes, [{ route: '/mrlab.Lab/Check', mismatches: CHECKS, byResult: { trailer_mismatch: CHECKS } }]);
  const text = spawnSync(process.execPath, [MAIN, 'report', diffLog], { encoding: 'utf8' });
  console.log(text.stdout);
  assert.match(text.stdout, new RegExp(`^\\s+${CHECKS}\\s+/mrlab\\.Lab/Check\\s`, 'm'));
  assert.match(text.stdout, /gRPC \/mrlab\.Lab\/Check → \S+: grpc-status 0( "OK")? vs 5 "lab: \/mrlab\.Lab\/Check fails here"/);
});
