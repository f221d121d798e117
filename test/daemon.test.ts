import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../src/config/config.js';
import { startDaemon } from '../src/daemon.js';
import { DROP_REASONS } from '../src/replay/outcome.js';
import { httpMix } from './fixtures/make-pcaps.js';
import { pcapFile } from './fixtures/frames.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.resolve(here, '../../test/fixtures/http-mix.pcap');

async function recordingServer() {
  const got: Array<{ method: string; url: string; headers: string[]; body: string }> = [];
  const srv = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      got.push({ method: req.method!, url: req.url!, headers: req.rawHeaders, body: Buffer.concat(parts).toString('latin1') });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, close: () => srv.close() };
}

function config(pcap: string, destination: string): Config {
  return { ...DEFAULTS, destinations: [destination], pcap, percentageByHeader: undefined, markHeader: undefined, metricsPort: 0, logLevel: 'silent' };
}

test('offline: the committed pcap fixture replays exactly the expected requests', async () => {
  const s = await recordingServer();
  const d = await startDaemon(config(FIXTURE, s.url), pino({ level: 'silent' }));
  assert.equal(await d.done, 0);
  s.close();
  const expected = httpMix().expected;
  const key = (r: { method: string; target?: string; url?: string; body: string }) => `${r.method} ${r.target ?? r.url} ${r.body}`;
  assert.deepEqual(s.got.map(key).sort(), expected.map(key).sort());
  const six = s.got.find((g) => g.url === '/six')!;
  assert.deepEqual(six.headers.slice(0, 2), ['Host', s.url.slice(7)]);
  assert.ok(six.headers.includes('fd00::10'), 'X-Forwarded-For carries the IPv6 client');
  const m = d.metrics;
  assert.equal(await m.total('mirror_replay_requests_replayed_total'), expected.length);
  assert.equal(await m.total('mirror_replay_requests_dropped_total'), 0);
  assert.equal(await m.total('mirror_replay_stream_bytes_skipped_total', { reason: 'http_midstream_skipped' }), 'tail of an earlier body\r\n'.length);
  assert.ok((await m.total('mirror_replay_reassembly_events_total', { event: 'out_of_order' })) > 0);
});

test('every drop reason is exported at 0 before anything happens', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-daemon-'));
  const empty = path.join(dir, 'empty.pcap');
  fs.writeFileSync(empty, pcapFile([]));
  try {
    const d = await startDaemon(config(empty, 'http://127.0.0.1:9'), pino({ level: 'silent' }));
    await d.done;
    const text = await d.metrics.registry.metrics();
    for (const r of DROP_REASONS) assert.match(text, new RegExp(`mirror_replay_requests_dropped_total\\{reason="${r}"\\} 0`), r);
    for (const name of ['mirror_replay_requests_replayed_total', 'mirror_replay_capture_packets_total', 'mirror_replay_capture_kernel_drops_total', 'mirror_replay_replay_duration_seconds', 'mirror_replay_replay_queue_depth', 'mirror_replay_flows_open', 'mirror_replay_reassembly_buffered_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      assert.match(text, new RegExp(`# TYPE ${name} `), name);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a test environment that is down: every request is counted as connect_error, none vanish', async () => {
  const d = await startDaemon(config(FIXTURE, 'http://127.0.0.1:9'), pino({ level: 'silent' }));
  await d.done;
  const n = httpMix().expected.length;
  assert.equal(await d.metrics.total('mirror_replay_requests_dropped_total', { reason: 'connect_error' }), n);
  assert.equal(await d.metrics.total('mirror_replay_requests_replayed_total'), 0);
});

test('a pcap that is not pcap fails with a clear error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-daemon-'));
  const bad = path.join(dir, 'bad.pcap');
  fs.writeFileSync(bad, 'this is not a capture file at all');
  try {
    const d = await startDaemon(config(bad, 'http://127.0.0.1:9'), pino({ level: 'silent' }));
    assert.equal(await d.done, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('offline compare: at the end of the file every answer is waited for, whatever --drain-timeout; copies are replayed, only originals compared', async () => {
  const got: string[] = [];
  const srv = http.createServer((req, res) => {
    got.push(`${req.url} ${req.headers['x-mirror-copy'] ?? '-'}`);
    req.resume();
    // Slower than --drain-timeout 0: an exit that only waited that long would count them as shutdown.
    setTimeout(() => res.end(), 300);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-daemon-'));
  const diffLog = path.join(dir, 'diff.jsonl');
  try {
    const cfg: Config = {
      ...config(FIXTURE, `http://127.0.0.1:${(srv.address() as { port: number }).port}`),
      drainTimeoutMs: 0,
      percentage: 200,
      copyHeader: 'X-Mirror-Copy',
      shadow: { diffLog, diffLogMaxBytes: 1 << 20, diffBodyBytes: 0, routes: [], ignoreHeaders: [], redactHeaders: [], jsonIgnore: null },
    };
    const d = await startDaemon(cfg, pino({ level: 'silent' }));
    assert.equal(await d.done, 0);
    const n = httpMix().expected.length;
    const m = d.metrics;
    assert.equal(await m.total('mirror_replay_requests_dropped_total'), 0, JSON.stringify(await m.byLabel('mirror_replay_requests_dropped_total', 'reason')));
    assert.equal(await m.total('mirror_replay_requests_replayed_total'), 2 * n);
    assert.equal(await m.total('mirror_replay_copies_total'), n);
    assert.equal(got.filter((g) => g.endsWith(' 1')).length, n);
    // One comparison per original: /p1 is the one request whose production answer the fixture holds whole.
    const compared = await m.byLabel('mirror_replay_responses_compared_total', 'result');
    assert.equal(Object.values(compared).reduce((a, b) => a + b, 0), n);
    assert.equal(compared.match, 1, JSON.stringify(compared));
    const lines = fs.readFileSync(diffLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const unpaired = lines.filter((l) => l.kind === 'diff').map((l) => l.unpaired?.reason);
    assert.ok(!unpaired.includes('shutdown'), JSON.stringify(unpaired));
  } finally {
    srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the rate caps are exported per configured rule from 0, with the copies counter', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-daemon-'));
  const empty = path.join(dir, 'empty.pcap');
  fs.writeFileSync(empty, pcapFile([]));
  try {
    const d = await startDaemon({ ...config(empty, 'http://127.0.0.1:9'), rate: 10, routeRates: ['5:^/api/', '1:^/admin/'] }, pino({ level: 'silent' }));
    await d.done;
    const text = await d.metrics.registry.metrics();
    for (const rule of ['^/api/', '^/admin/', 'global']) assert.match(text, new RegExp(`mirror_replay_rate_limited_total\\{rule="${rule.replace(/[\^/]/g, '\\$&')}"\\} 0`), rule);
    assert.match(text, /mirror_replay_copies_total 0/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
