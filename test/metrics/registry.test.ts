/**
 * The error labels come from the catalogue (src/errors.ts): every code shows in a real /metrics
 * scrape under its own label, at 0 before anything failed, and a failure is counted under its
 * code, not as `other`. The capture loops' fault counters reach /metrics per interface and kind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { CAPTURE_ERRORS, zeroCaptureStats, type SourceCounts } from '../../src/capture/source.js';
import { ERROR_CODES, REPLAY_ERROR_CODES, SYSTEM_ERROR_CODES } from '../../src/errors.js';
import { Metrics, type PipelineProbe } from '../../src/metrics/registry.js';
import { startMetricsServer } from '../../src/metrics/server.js';
import { Destination } from '../../src/replay/destination.js';

async function scrape(m: Metrics): Promise<string> {
  const srv = await startMetricsServer(m.registry, '127.0.0.1', 0, () => ({ ok: true, detail: 'ok' }));
  try {
    const r = await fetch(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/metrics`);
    assert.equal(r.status, 200);
    return await r.text();
  } finally {
    srv.close();
  }
}

/** The value of one series in exposition text, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

function probeOf(capture: () => SourceCounts[]): PipelineProbe {
  return {
    capture,
    decodeAnomalies: () => new Float64Array(64),
    decodeSkips: () => new Float64Array(64),
    reassemblyEvents: () => new Float64Array(64),
    flowsOpen: () => 0,
    reassemblyHeldBytes: () => 0,
    httpBufferedBytes: () => 0,
    destinations: () => [],
  };
}

test('every code in the catalogue is in /metrics under its own label, at 0 before anything failed', async () => {
  assert.ok(ERROR_CODES.length >= 9 && ERROR_CODES.includes('MR_INVALID_TARGET'));
  const text = await scrape(new Metrics(['http://10.0.0.37:8080'], undefined, { defaultMetrics: false }));
  for (const code of [...ERROR_CODES, ...SYSTEM_ERROR_CODES, 'other']) assert.equal(sample(text, 'mirror_replay_errors_total', { code }), 0, `mirror_replay_errors_total{code="${code}"}`);
  for (const code of [...REPLAY_ERROR_CODES, ...SYSTEM_ERROR_CODES, 'other']) {
    assert.equal(sample(text, 'mirror_replay_replay_errors_total', { destination: 'http://10.0.0.37:8080', code }), 0, `mirror_replay_replay_errors_total{code="${code}"}`);
  }
});

test('a request-target a rewrite broke is counted as MR_INVALID_TARGET by a real destination, not as other; unknown codes are other', async () => {
  const m = new Metrics(['http://127.0.0.1:9'], undefined, { defaultMetrics: false });
  const d = new Destination('http://127.0.0.1:9', { maxConcurrency: 1, maxQueue: 10, maxQueueBytes: 1 << 20, timeoutMs: 1000 }, m);
  d.enqueue({ method: 'GET', target: '/a b', headers: ['Host', 'h'], body: Buffer.alloc(0), chunked: false, trailers: [], minorVersion: 1 });
  m.failure('ERR_SOMETHING_NEW');
  m.failure(undefined);
  const text = await scrape(m);
  assert.equal(sample(text, 'mirror_replay_replay_errors_total', { destination: 'http://127.0.0.1:9', code: 'MR_INVALID_TARGET' }), 1);
  assert.equal(sample(text, 'mirror_replay_replay_errors_total', { destination: 'http://127.0.0.1:9', code: 'other' }), 0);
  assert.equal(sample(text, 'mirror_replay_errors_total', { code: 'MR_INVALID_TARGET' }), 1);
  assert.equal(sample(text, 'mirror_replay_errors_total', { code: 'other' }), 2);
  assert.equal(sample(text, 'mirror_replay_requests_dropped_total', { reason: 'invalid_for_replay' }), 1);
});

test('capture faults: every kind at 0 per interface, then what the loops counted (summed over sources), never going back', async () => {
  let counts: SourceCounts[] = [{ interface: 'vxlan0', ...zeroCaptureStats() }, { interface: 'vxlan1', ...zeroCaptureStats() }];
  const m = new Metrics([], probeOf(() => counts), { defaultMetrics: false });
  let text = await scrape(m);
  for (const iface of ['vxlan0', 'vxlan1']) for (const { kind } of CAPTURE_ERRORS) assert.equal(sample(text, 'mirror_replay_capture_errors_total', { interface: iface, kind }), 0, `${iface} ${kind}`);
  counts = [{ interface: 'vxlan0', ...zeroCaptureStats(), handlerErrors: 7, badBlocks: 1, kernelFreezes: 2 }, { interface: 'vxlan1', ...zeroCaptureStats(), pollErrors: 3, lossHandlerErrors: 1 }];
  text = await scrape(m);
  const got = (iface: string, kind: string) => sample(text, 'mirror_replay_capture_errors_total', { interface: iface, kind });
  assert.deepEqual([got('vxlan0', 'handler'), got('vxlan0', 'bad_block'), got('vxlan0', 'kernel_freeze'), got('vxlan0', 'poll')], [7, 1, 2, 0]);
  assert.deepEqual([got('vxlan1', 'poll'), got('vxlan1', 'loss_handler'), got('vxlan1', 'handler')], [3, 1, 0]);
  // A source whose counts restart lower (a worker's first report) does not make the counter go back.
  counts = [{ interface: 'vxlan0', ...zeroCaptureStats(), handlerErrors: 2 }];
  text = await scrape(m);
  assert.equal(got('vxlan0', 'handler'), 7);
  counts = [{ interface: 'vxlan0', ...zeroCaptureStats(), handlerErrors: 5 }];
  text = await scrape(m);
  assert.equal(got('vxlan0', 'handler'), 10);
});

test('requests by protocol: parsed and replayed carry protocol h1/h2, every series from 0; an h2c destination counts under h2', async () => {
  const m = new Metrics(['http://10.0.0.37:8080', 'http://10.0.0.38:50051?protocol=h2c'], undefined, { defaultMetrics: false });
  let text = await scrape(m);
  for (const protocol of ['h1', 'h2']) assert.equal(sample(text, 'mirror_replay_requests_parsed_total', { protocol }), 0, `parsed{protocol="${protocol}"}`);
  for (const status_class of ['1xx', '2xx', '3xx', '4xx', '5xx']) {
    assert.equal(sample(text, 'mirror_replay_requests_replayed_total', { destination: 'http://10.0.0.37:8080', status_class, protocol: 'h1' }), 0);
    assert.equal(sample(text, 'mirror_replay_requests_replayed_total', { destination: 'http://10.0.0.38:50051', status_class, protocol: 'h2' }), 0);
  }
  for (const destination of ['http://10.0.0.37:8080', 'http://10.0.0.38:50051']) {
    assert.equal(sample(text, 'mirror_replay_destination_dropped_total', { destination, reason: 'protocol_mismatch' }), 0);
    assert.equal(sample(text, 'mirror_replay_replay_retries_total', { destination }), 0);
  }
  assert.equal(sample(text, 'mirror_replay_replay_errors_total', { destination: 'http://10.0.0.38:50051', code: 'MR_STREAM_RESET' }), 0);
  m.parsed('h2');
  m.parsed('h2');
  m.parsed('h1');
  m.replayed('http://10.0.0.38:50051', 200, 0.01);
  m.retried('http://10.0.0.38:50051');
  m.dropped('protocol_mismatch', 1, 'http://10.0.0.37:8080');
  text = await scrape(m);
  assert.equal(sample(text, 'mirror_replay_requests_parsed_total', { protocol: 'h2' }), 2);
  assert.equal(sample(text, 'mirror_replay_requests_parsed_total', { protocol: 'h1' }), 1);
  assert.equal(sample(text, 'mirror_replay_requests_replayed_total', { destination: 'http://10.0.0.38:50051', status_class: '2xx', protocol: 'h2' }), 1);
  assert.equal(sample(text, 'mirror_replay_replay_retries_total', { destination: 'http://10.0.0.38:50051' }), 1);
  assert.equal(sample(text, 'mirror_replay_destination_dropped_total', { destination: 'http://10.0.0.37:8080', reason: 'protocol_mismatch' }), 1);
  assert.equal(await m.total('mirror_replay_requests_parsed_total'), 3);
});
