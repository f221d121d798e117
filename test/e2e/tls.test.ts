/**
 * TLS on the mirrored port, end to end in the namespace lab: production serves HTTPS on 443 (a
 * self-signed certificate made by openssl), real clients (curl, node:https) talk to it, the mirror
 * carries both directions, and the daemon listens for port 443. Every connection is counted under
 * `tls`, none as http_malformed, nothing reaches the test environment; a connection already open
 * when the daemon starts (midstream pickup) is `tls` too. `doctor --filter-request-port 443` names TLS on the port.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { selfSignedCert } from '../../scripts/lab/cert.js';
import { Lab, PROD_V4, ROOT, sleep, TEST_HOST } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const TLS_CLIENT = path.join(ROOT, 'dist/scripts/lab/tls-client.js');
const URL443 = `https://${PROD_V4}/`;

let lab: Lab;

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the end-to-end lab needs root for network namespaces');
  lab = new Lab(`mr-tls-${process.pid}`);
  await lab.up();
  const { cert, key } = selfSignedCert(lab.dir);
  await lab.startRecorders([], ['--tls-listen', `${PROD_V4}:443`, '--cert', cert, '--key', key]);
});

after(async () => {
  if (lab) await lab.down();
});

/** Runs the HTTPS client in the client namespace and resolves with its exit code and output. */
function tlsClient(args: string[]): { proc: ChildProcess; done: Promise<{ ok: number; failed: number }> } {
  const proc = lab.spawnIn('client', process.execPath, [TLS_CLIENT, '--url', URL443, ...args]);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  const done = new Promise<{ ok: number; failed: number }>((resolve, reject) => {
    proc.on('exit', (c) => (c === 0 ? resolve(JSON.parse(out.trim())) : reject(new Error(`tls-client exited ${c}: ${out}`))));
  });
  return { proc, done };
}

function curl(urls: string[]): void {
  const r = lab.run('client', 'curl', ['-sk', '--http1.1', '-m', '10', '-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null', ...urls]);
  assert.equal(r.status, 0, `curl ${urls.join(' ')}: ${r.stderr}`);
}

async function waitForMetric(name: string, match: string, n: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let v = 0;
  while (Date.now() < deadline) {
    v = lab.metric(name, match);
    if (v >= n) return v;
    await sleep(200);
  }
  return v;
}

test('TLS clients against a TLS production server: every connection is tls, none http_malformed', { skip, timeout: 120_000 }, async () => {
  // Open before the daemon starts: it picks this connection up midstream (no SYN seen).
  const early = tlsClient(['--keep-alive', '--requests', '40', '--interval-ms', '100', '--max-seconds', '20']);
  await sleep(1000);
  await lab.startDaemon(['--filter-request-port', '443']);
  const CURL_ONE = 5;
  for (let i = 0; i < CURL_ONE; i++) curl([`${URL443}one/${i}`]); // one connection each
  curl([`${URL443}a`, `${URL443}b`, `${URL443}c`]); // three requests, one connection
  const fresh = await tlsClient(['--requests', '4']).done; // node:https, a new connection per request
  const kept = await early.done;
  assert.deepEqual(fresh, { ok: 4, failed: 0 });
  assert.equal(kept.failed, 0);
  const connections = CURL_ONE + 1 + 4 + 1;
  // Connections are counted when their first bytes arrive; wait for all of them.
  const tls = await waitForMetric('mirror_replay_requests_dropped_total', 'reason="tls"', connections, 15_000);
  const figures = {
    tls,
    http_malformed: lab.metric('mirror_replay_requests_dropped_total', 'reason="http_malformed"'),
    http_after_refused: lab.metric('mirror_replay_requests_dropped_total', 'reason="http_after_refused"'),
    parsed: lab.metric('mirror_replay_requests_parsed_total'),
    tlsBytes: lab.metric('mirror_replay_stream_bytes_skipped_total', 'reason="tls"'),
    midstreamBytes: lab.metric('mirror_replay_stream_bytes_skipped_total', 'reason="http_midstream_skipped"'),
    malformedBytes: lab.metric('mirror_replay_stream_bytes_skipped_total', 'reason="http_malformed"'),
  };
  console.log(`tls figures (${connections} connections, ${CURL_ONE + 3 + 4 + kept.ok} requests): ${JSON.stringify(figures)}`);
  assert.equal(figures.tls, connections, 'one tls drop per connection, the midstream one included');
  assert.equal(figures.http_malformed, 0);
  assert.equal(figures.http_after_refused, 0);
  assert.equal(figures.malformedBytes, 0);
  assert.equal(figures.parsed, 0);
  assert.ok(figures.tlsBytes > connections * 500, 'the connections\' bytes are counted as skipped under tls');
  assert.equal(lab.lines(lab.testLog), 0, 'nothing replayed');
  assert.ok(lab.lines(lab.prodLog) >= CURL_ONE + 3 + 4 + kept.ok, 'production served every request over TLS');
  assert.equal(await lab.stopDaemon(), 0);
});

test('doctor --filter-request-port 443 names TLS on the port, with what to mirror instead', { skip, timeout: 60_000 }, async () => {
  const load = tlsClient(['--requests', '200', '--interval-ms', '20', '--max-seconds', '6']);
  await sleep(500);
  const p = spawn('ip', ['netns', 'exec', lab.ns('adapter'), process.execPath, MAIN, 'doctor', '--seconds', '2', '--filter-request-port', '443', '--destination', `http://${TEST_HOST}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  await load.done;
  console.log(out.trimEnd());
  assert.equal(code, 1, 'TLS on the only port is an error');
  const l = out.split('\n').find((x) => /^error +tls port 443: port 443 carries TLS: \d+ of \d+ connections began with a TLS record/.test(x));
  assert.ok(l, out);
  assert.match(l, /fix: mirror the plaintext hop instead: terminate TLS at a load balancer/);
  assert.ok(!/http_malformed|malformed/.test(out), out);
});
