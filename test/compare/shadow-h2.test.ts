/**
 * Shadow testing on HTTP/2 connections: answers pair with requests by stream id, trailers are
 * compared (gRPC's status lives there), the diff log and report name the gRPC method and both
 * statuses. The HTTP/2 answer reader is replaced by a recorder of what production.ts gives it, so
 * these tests hold the pairing rules; test/e2e/grpc.test.ts runs the real reader on real traffic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import client from 'prom-client';
import { pino } from 'pino';
import { compareOptions } from '../../src/compare/compare.js';
import { DiffLog } from '../../src/compare/difflog.js';
import { isServerPreface, type H2AnswerEvents, type H2AnswerReaderFactory } from '../../src/compare/production.js';
import { buildReport, formatReport } from '../../src/compare/report.js';
import { compileRoutes } from '../../src/compare/routes.js';
import { Shadow } from '../../src/compare/shadow.js';
import { CompareMetrics } from '../../src/metrics/compare.js';
import { BodyDigest, type ResponseDigest } from '../../src/http/response.js';
import type { HttpRequest } from '../../src/http/types.js';
import type { AnswerSink } from '../../src/replay/destination.js';

const INFO = { clientAddr: '10.0.0.1', clientPort: 40000, serverAddr: '10.0.0.2', serverPort: 50051, ipVersion: 4 };
const silent = pino({ level: 'silent' });
/** An empty SETTINGS frame: the server's connection preface (RFC 9113 §3.4). */
const SERVER_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const GRPC = ['content-type', 'application/grpc'];

function h2req(streamId: number, path: string, headers: string[] = GRPC): HttpRequest {
  return { method: 'POST', target: path, authority: 'svc:50051', minorVersion: 1, headers: ['te', 'trailers', ...headers], body: Buffer.from([0, 0, 0, 0, 2, 8, 1]), chunked: false, trailers: [], h2: { scheme: 'http', streamId } };
}

function digest(status: number, body: string, headers: string[] = GRPC, trailers?: string[]): ResponseDigest {
  const d = new BodyDigest(16, 0, headers);
  d.update(Buffer.from(body));
  const out = d.finish(status, 1, headers);
  return trailers ? { ...out, trailers } : out;
}

const ok = (body = 'hello') => digest(200, body, GRPC, ['grpc-status', '0']);
const failed = (code: string, message: string) => digest(200, '', GRPC, ['grpc-status', code, 'grpc-message', message]);

/** A stand-in for src/http2's reader: records the events hook and what bytes reached it. */
function fakeReader() {
  const readers: Array<{ events: H2AnswerEvents; afterUpgrade: boolean; bytes: Buffer[]; ended: boolean }> = [];
  const factory: H2AnswerReaderFactory = (events, opts) => {
    const r = { events, afterUpgrade: opts.afterUpgrade, bytes: [] as Buffer[], ended: false };
    readers.push(r);
    return {
      push: (b, o, l) => void r.bytes.push(Buffer.from(b.subarray(o, o + l))),
      gap: () => events.connectionLost('gap'),
      taint: () => events.connectionLost('overlap_conflict'),
      stalled() {},
      end: () => void (r.ended = true),
      bufferedBytes: 0,
      pendingBytes: 0,
    };
  };
  return { readers, factory };
}

function setup(opts: { diffLog?: string; maxPending?: number } = {}) {
  const reg = new client.Registry();
  const metrics = new CompareMetrics(reg, ['http://test'], []);
  const log = opts.diffLog ? new DiffLog(opts.diffLog, { maxBytes: 1 << 20, keep: 2, redact: [] }) : null;
  const fake = fakeReader();
  const shadow = new Shadow(
    { compare: compareOptions(), routes: [], snippetBytes: 8, captureJsonBytes: 0, destinations: ['http://test'], baseline: -1, maxPendingPerConnection: opts.maxPending },
    metrics,
    log,
    silent,
    fake.factory,
  );
  const values = async (name: string, label: string) => {
    const out: Record<string, number> = {};
    for (const v of (await reg.getSingleMetric(name)!.get()).values) if (v.value) out[String(v.labels[label])] = (out[String(v.labels[label])] ?? 0) + v.value;
    return out;
  };
  return { shadow, fake, counts: () => values('mirror_replay_responses_compared_total', 'result'), lost: () => values('mirror_replay_responses_lost_total', 'reason'), reg };
}

function connect(shadow: Shadow, midstream = false) {
  const nullParser = { push() {}, gap() {}, taint() {}, stalled() {}, end() {}, bufferedBytes: 0, pendingBytes: 0 };
  const rq = shadow.requestSide(INFO, midstream, nullParser)!;
  const rs = shadow.responseSink(INFO, midstream);
  const sent = new Map<number, AnswerSink[]>();
  return {
    request: (r: HttpRequest, admitted = true) => rq.side.request(r, (a) => (sent.set(r.h2?.streamId ?? -1, a), admitted)),
    dropped: (n: number) => rq.side.dropped(n),
    respond: (b: Buffer) => rs.push(b, 0, b.length),
    test: (id: number, d: ResponseDigest) => sent.get(id)![0].answered(d),
    end: () => {
      rq.sink.end();
      rs.end();
    },
  };
}

test("the server's SETTINGS frame is told from HTTP/1.x and TLS by its header", () => {
  assert.equal(isServerPreface(SERVER_SETTINGS), true);
  assert.equal(isServerPreface(Buffer.from([0, 0, 18, 4, 0, 0, 0, 0, 0])), true);
  assert.equal(isServerPreface(Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0])), false, 'a SETTINGS ACK is not a first frame');
  assert.equal(isServerPreface(Buffer.from([0, 0, 7, 4, 0, 0, 0, 0, 0])), false, 'a length no SETTINGS can have');
  assert.equal(isServerPreface(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 1])), false, 'SETTINGS on a stream');
  assert.equal(isServerPreface(Buffer.from('HTTP/1.1 ', 'latin1')), false);
  assert.equal(isServerPreface(Buffer.from([0x16, 3, 3, 0, 0x7a, 2, 0, 0, 0x76])), false);
});

test('interleaved streams pair by stream id, whatever order the answers and requests come in', async () => {
  const { shadow, fake, counts } = setup();
  const c = connect(shadow);
  // The server's SETTINGS, cut after 4 bytes: the reader is chosen once the frame header is whole.
  c.respond(SERVER_SETTINGS.subarray(0, 4));
  assert.equal(fake.readers.length, 0);
  c.respond(Buffer.concat([SERVER_SETTINGS.subarray(4), Buffer.from([1, 2, 3])]));
  assert.equal(fake.readers.length, 1);
  assert.deepEqual(Buffer.concat(fake.readers[0].bytes), Buffer.concat([SERVER_SETTINGS, Buffer.from([1, 2, 3])]), 'every byte reaches the reader');
  const prod = fake.readers[0].events;
  c.request(h2req(1, '/pkg.Greeter/Hello'));
  c.request(h2req(3, '/pkg.Greeter/Hello'));
  prod.answer(5, ok('five')); // before its request was parsed
  c.request(h2req(5, '/pkg.Greeter/List'));
  prod.answer(3, ok('three'));
  prod.answer(1, ok('one'));
  c.test(3, ok('three'));
  c.test(1, ok('one'));
  c.test(5, ok('changed'));
  assert.deepEqual(await counts(), { match: 2, body_mismatch: 1 });
  c.end();
  assert.equal(shadow.connections, 0);
});

test('a different grpc-status is a trailer_mismatch, named before the body difference it explains', async () => {
  const { shadow, fake, counts } = setup();
  const c = connect(shadow);
  c.respond(SERVER_SETTINGS);
  c.request(h2req(1, '/pkg.Greeter/Hello'));
  fake.readers[0].events.answer(1, ok());
  c.test(1, failed('5', 'no such greeting'));
  assert.deepEqual(await counts(), { trailer_mismatch: 1 });
});

test('reset streams, lost connections and missing answers are unpaired with a reason', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-h2shadow-'));
  try {
    const file = path.join(dir, 'diff.jsonl');
    const { shadow, fake, counts, lost } = setup({ diffLog: file });
    const c = connect(shadow);
    c.respond(SERVER_SETTINGS);
    const prod = fake.readers[0].events;
    for (const id of [1, 3, 5, 7]) c.request(h2req(id, '/pkg.Greeter/Hello'));
    for (const id of [1, 3, 5, 7]) c.test(id, ok());
    prod.streamLost(3, 'stream_reset');
    prod.answer(1, ok());
    prod.connectionLost('http2_error'); // 5 and 7 never answered; later requests neither
    c.request(h2req(9, '/pkg.Greeter/Hello'));
    c.test(9, ok());
    assert.deepEqual(await counts(), { match: 1, unpaired: 4 });
    assert.deepEqual(await lost(), { stream_reset: 1, http2_error: 1 });
    shadow.close();
    const diffs = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.kind === 'diff');
    assert.deepEqual(diffs.map((d) => d.unpaired.reason), ['response_stream_reset', 'response_http2_error', 'response_http2_error', 'response_http2_error']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a midstream HTTP/2 connection is not compared', async () => {
  const { shadow, counts } = setup();
  const c = connect(shadow, true);
  c.respond(Buffer.from([0, 0, 5, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5]));
  c.request(h2req(41, '/pkg.Greeter/Hello'));
  c.test(41, ok());
  assert.deepEqual(await counts(), { unpaired: 1 });
});

test('pending state is bounded: unclaimed answers age out, unanswered requests break the connection', async () => {
  const { shadow, fake, counts } = setup({ maxPending: 4 });
  const c = connect(shadow);
  c.respond(SERVER_SETTINGS);
  const prod = fake.readers[0].events;
  // Answers to streams whose requests the request side dropped: they never pair; only the newest 4 are kept.
  for (let id = 1; id <= 41; id += 2) prod.answer(id, ok());
  c.dropped(21);
  c.request(h2req(41, '/pkg.Greeter/Hello')); // still held
  c.test(41, ok());
  c.request(h2req(1, '/pkg.Greeter/Hello')); // aged out: waits
  c.test(1, ok());
  assert.deepEqual(await counts(), { match: 1 });
  for (let id = 43; id <= 51; id += 2) c.request(h2req(id, '/pkg.Greeter/Hello'));
  // Stream 1 and four more waiting: past 4 pending, pairing on the connection stops (too_many_pending).
  assert.deepEqual(await counts(), { match: 1, unpaired: 1 }, 'the others wait for the test side');
  for (let id = 43; id <= 51; id += 2) c.test(id, ok());
  assert.deepEqual(await counts(), { match: 1, unpaired: 6 });
});

test('h2c upgrade: the 101 is not an answer, the upgraded request is stream 1, the rest goes to the HTTP/2 reader', async () => {
  const { shadow, fake, counts } = setup();
  const c = connect(shadow);
  const up: HttpRequest = { method: 'GET', target: '/up', minorVersion: 1, headers: ['Host', 'svc', 'Connection', 'Upgrade, HTTP2-Settings', 'Upgrade', 'h2c', 'HTTP2-Settings', 'AAMAAABkAAQAoAAAAAIAAAAA'], body: Buffer.alloc(0), chunked: false, trailers: [] };
  c.request(up); // an HTTP/1.1 request: no stream id
  const head = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n', 'latin1');
  c.respond(Buffer.concat([head, SERVER_SETTINGS.subarray(0, 5)]));
  c.respond(SERVER_SETTINGS.subarray(5));
  assert.equal(fake.readers.length, 1);
  assert.equal(fake.readers[0].afterUpgrade, true);
  assert.deepEqual(Buffer.concat(fake.readers[0].bytes), SERVER_SETTINGS, 'the bytes after the 101 head, and later pushes');
  const text = ['content-type', 'text/plain'];
  fake.readers[0].events.answer(1, digest(200, 'up', text));
  c.test(-1, digest(200, 'up', text));
  c.request(h2req(3, '/after', text));
  fake.readers[0].events.answer(3, digest(200, 'x', text));
  c.test(3, digest(404, 'x', text));
  assert.deepEqual(await counts(), { match: 1, status_mismatch: 1 });
});

test('h2c upgrade as src/http2 reports it: the 101 first, then the upgraded request as stream 1 with h2 set', async () => {
  const { shadow, fake, counts } = setup();
  const c = connect(shadow);
  c.respond(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n', 'latin1'));
  c.respond(SERVER_SETTINGS);
  const prod = fake.readers[0].events;
  prod.answer(1, ok('up'));
  c.request(h2req(1, '/pkg.Greeter/Hello'));
  c.dropped(2); // two later streams the request side refused: no stream id, nothing to pair
  c.request(h2req(7, '/pkg.Greeter/Hello'));
  prod.answer(7, ok('seven'));
  c.test(1, ok('up'));
  c.test(7, ok('seven'));
  assert.deepEqual(await counts(), { match: 2 });
});

test('a 101 to another protocol (WebSocket) still ends pairing on the connection', async () => {
  const { shadow, fake, counts } = setup();
  const c = connect(shadow);
  c.request({ method: 'GET', target: '/ws', minorVersion: 1, headers: ['Upgrade', 'websocket'], body: Buffer.alloc(0), chunked: false, trailers: [] });
  c.respond(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello', 'latin1'));
  c.test(-1, digest(101, '', ['upgrade', 'websocket']));
  assert.equal(fake.readers.length, 0);
  assert.deepEqual(await counts(), { match: 1 });
});

test('diff log and report name the gRPC method and both grpc-status values', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-h2shadow-'));
  try {
    const file = path.join(dir, 'diff.jsonl');
    const { shadow, fake, reg } = setup({ diffLog: file });
    const c = connect(shadow);
    c.respond(SERVER_SETTINGS);
    const prod = fake.readers[0].events;
    for (let i = 0; i < 6; i++) {
      const id = 1 + 2 * i;
      const method = i % 2 ? '/pkg.Greeter/Hello' : '/pkg.Greeter/Bye';
      c.request(h2req(id, method));
      prod.answer(id, ok());
      c.test(id, method === '/pkg.Greeter/Bye' ? failed('12', 'Bye is not implemented') : ok());
    }
    shadow.close();
    const byProtocol: Record<string, number> = {};
    for (const v of (await reg.getSingleMetric('mirror_replay_responses_compared_by_protocol_total')!.get()).values) if (v.value) byProtocol[`${v.labels.protocol}/${v.labels.result}`] = v.value;
    assert.deepEqual(byProtocol, { 'grpc/match': 3, 'grpc/trailer_mismatch': 3 });
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const diff = lines.find((l) => l.kind === 'diff');
    assert.equal(diff.result, 'trailer_mismatch');
    assert.equal(diff.route, '/pkg.Greeter/Bye');
    assert.deepEqual(diff.trailers, ['grpc-message', 'grpc-status']);
    assert.deepEqual(diff.trailerValues['grpc-status'], { production: '0', test: '12' });
    assert.deepEqual(diff.grpc, { method: '/pkg.Greeter/Bye', production: { code: '0', message: null }, test: { code: '12', message: 'Bye is not implemented' } });
    const r = await buildReport([file]);
    assert.deepEqual(r.topRoutes, [{ route: '/pkg.Greeter/Bye', mismatches: 3, byResult: { trailer_mismatch: 3 } }]);
    assert.equal(r.mismatchRate, 0.5);
    const text = formatReport(r);
    assert.match(text, /^\s+3\s+\/pkg\.Greeter\/Bye\s/m);
    assert.match(text, /trailer_mismatch: gRPC \/pkg\.Greeter\/Bye → http:\/\/test: grpc-status 0 vs 12 "Bye is not implemented"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a trailers-only gRPC answer (grpc-status in the head) reads as that status', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-h2shadow-'));
  try {
    const file = path.join(dir, 'diff.jsonl');
    const { shadow, fake } = setup({ diffLog: file });
    const c = connect(shadow);
    c.respond(SERVER_SETTINGS);
    c.request(h2req(1, '/pkg.Greeter/Hello'));
    fake.readers[0].events.answer(1, ok());
    c.test(1, digest(200, '', [...GRPC, 'grpc-status', '14', 'grpc-message', 'back%20end%20unavailable%E2%9C%97']));
    shadow.close();
    const diff = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.kind === 'diff');
    assert.deepEqual(diff.grpc.test, { code: '14', message: 'back end unavailable✗' }, 'grpc-message is percent-decoded');
    assert.equal(diff.result, 'trailer_mismatch', 'production has grpc-status in trailers, the test none');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--compare-route templates match gRPC method paths (/package.Service/Method)', () => {
  const route = compileRoutes(['/mrlab.Lab/Check', '/grpc.health.v1.Health/*', '/mrlab.Other/:method']);
  assert.equal(route('/mrlab.Lab/Check'), '/mrlab.Lab/Check');
  assert.equal(route('/mrlab.LabXCheck'), 'other', 'the dot is a literal');
  assert.equal(route('/grpc.health.v1.Health/Watch'), '/grpc.health.v1.Health/*');
  assert.equal(route('/mrlab.Other/Echo'), '/mrlab.Other/:method');
  assert.equal(route('/mrlab.Lab/Echo'), 'other');
});
