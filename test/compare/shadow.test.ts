import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import client from 'prom-client';
import { pino } from 'pino';
import { compareOptions } from '../../src/compare/compare.js';
import { DiffLog } from '../../src/compare/difflog.js';
import { buildReport, formatReport } from '../../src/compare/report.js';
import { Shadow } from '../../src/compare/shadow.js';
import { CompareMetrics } from '../../src/metrics/compare.js';
import type { HttpRequest } from '../../src/http/types.js';
import type { AnswerSink } from '../../src/replay/destination.js';
import { BodyDigest } from '../../src/http/response.js';

const INFO = { clientAddr: '10.0.0.1', clientPort: 40000, serverAddr: '10.0.0.2', serverPort: 80, ipVersion: 4 };
const silent = pino({ level: 'silent' });

function req(method: string, target: string): HttpRequest {
  return { method, target, minorVersion: 1, headers: ['Host', 'x', 'Authorization', 'Bearer s3cret'], body: Buffer.alloc(0), chunked: false, trailers: [] };
}
const wire = (status: number, body: string, extra = '') => Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`, 'latin1');
function answer(sink: AnswerSink, status: number, body: string, headers: string[] = []): void {
  const d = new BodyDigest(sink.snippetBytes, sink.captureJsonBytes, headers);
  d.update(Buffer.from(body));
  sink.answered(d.finish(status, 1, headers));
}

function setup(opts: { baseline?: boolean; diffLog?: string } = {}) {
  const reg = new client.Registry();
  const dests = opts.baseline ? ['http://test', 'http://baseline'] : ['http://test'];
  const metrics = new CompareMetrics(reg, ['http://test'], ['/a/:id']);
  const log = opts.diffLog ? new DiffLog(opts.diffLog, { maxBytes: 1 << 20, keep: 2, redact: [] }) : null;
  const shadow = new Shadow({ compare: compareOptions(), routes: ['/a/:id'], snippetBytes: 8, captureJsonBytes: 0, destinations: dests, baseline: opts.baseline ? 1 : -1, inactiveAfterRequests: 5 }, metrics, log, silent);
  const counts = async () => {
    const out: Record<string, number> = {};
    for (const v of (await reg.getSingleMetric('mirror_replay_responses_compared_total')!.get()).values) if (v.value) out[String(v.labels.result)] = v.value;
    return out;
  };
  const noise = async () => (await reg.getSingleMetric('mirror_replay_responses_noise_total')!.get()).values.reduce((a, v) => a + v.value, 0);
  return { shadow, counts, noise, reg };
}

/** A connection whose both directions start at their beginning; returns the hooks. */
function connect(shadow: Shadow) {
  const nullParser = { push() {}, gap() {}, taint() {}, stalled() {}, end() {}, bufferedBytes: 0, pendingBytes: 0 };
  const rq = shadow.requestSide(INFO, false, nullParser)!;
  const rs = shadow.responseSink(INFO, false);
  const sent: AnswerSink[][] = [];
  return {
    request: (r: HttpRequest, admitted = true) => rq.side.request(r, (a) => (sent.push(a), admitted)),
    dropped: (n: number) => rq.side.dropped(n),
    respond: (b: Buffer) => rs.push(b, 0, b.length),
    sent,
    end: () => {
      rq.sink.end();
      rs.end();
    },
  };
}

test('pipelined requests pair in order, whichever side answers first', async () => {
  const { shadow, counts } = setup();
  const c = connect(shadow);
  c.request(req('GET', '/a/1'));
  c.request(req('GET', '/a/2'));
  c.request(req('HEAD', '/a/3'));
  answer(c.sent[1][0], 200, 'two'); // the test env answers the second first
  c.respond(Buffer.concat([wire(200, 'one'), wire(200, 'two'), Buffer.from('HTTP/1.1 200 X\r\nContent-Length: 50\r\n\r\n')]));
  answer(c.sent[0][0], 500, 'one');
  answer(c.sent[2][0], 200, '');
  assert.deepEqual(await counts(), { match: 2, status_mismatch: 1 });
  c.end();
  assert.equal(shadow.connections, 0);
});

test('a response before its request is parsed still pairs; requests the parser lost consume their answers', async () => {
  const { shadow, counts } = setup();
  const c = connect(shadow);
  c.dropped(1); // e.g. a request with a gap: the server answered it anyway
  c.respond(Buffer.concat([wire(400, 'bad'), wire(200, 'ok')]));
  c.request(req('GET', '/a/1'));
  answer(c.sent[0][0], 200, 'ok');
  assert.deepEqual(await counts(), { match: 1 });
});

test('policy drops are not compared; lost or missing answers are unpaired', async () => {
  const { shadow, counts } = setup();
  const c = connect(shadow);
  c.request(req('GET', '/a/1'), false);
  c.request(req('GET', '/a/2'));
  c.request(req('GET', '/a/3'));
  c.respond(Buffer.concat([wire(200, 'x'), wire(200, 'y')]));
  c.sent[1][0].failed('timeout');
  answer(c.sent[2][0], 200, 'z');
  c.end(); // /a/3's production answer never came
  assert.deepEqual(await counts(), { unpaired: 2 });
});

test('midstream connections are unpaired, not guessed', async () => {
  const { shadow, counts } = setup();
  const nullParser = { push() {}, gap() {}, taint() {}, stalled() {}, end() {}, bufferedBytes: 0, pendingBytes: 0 };
  const rq = shadow.requestSide(INFO, true, nullParser)!;
  const sent: AnswerSink[][] = [];
  rq.side.request(req('GET', '/a/1'), (a) => (sent.push(a), true));
  answer(sent[0][0], 200, 'ok');
  assert.deepEqual(await counts(), { unpaired: 1 });
});

test('noise: a difference the baseline shares is counted apart', async () => {
  const { shadow, counts, noise } = setup({ baseline: true });
  const c = connect(shadow);
  c.request(req('GET', '/a/1'));
  c.request(req('GET', '/a/2'));
  c.respond(Buffer.concat([wire(200, 'r1'), wire(200, 'same')]));
  answer(c.sent[0][0], 200, 'r2'); // random body: the baseline differs too
  answer(c.sent[0][1], 200, 'r3');
  answer(c.sent[1][0], 200, 'new'); // a real change: the baseline agrees with production
  answer(c.sent[1][1], 200, 'same');
  assert.deepEqual(await counts(), { body_mismatch: 2 });
  assert.equal(await noise(), 1);
});

test('inactive without responses: later connections are not paired', async () => {
  const { shadow, reg } = setup();
  const nullParser = { push() {}, gap() {}, taint() {}, stalled() {}, end() {}, bufferedBytes: 0, pendingBytes: 0 };
  for (let i = 0; i < 5; i++) shadow.requestSide({ ...INFO, clientPort: i }, false, nullParser)!.side.request(req('GET', '/'), () => true);
  shadow.tick(Date.now(), 0);
  assert.equal(shadow.requestSide(INFO, false, nullParser), null);
  assert.equal((await reg.getSingleMetric('mirror_replay_compare_active')!.get()).values[0].value, 0);
  shadow.tick(Date.now(), 10);
  assert.notEqual(shadow.requestSide({ ...INFO, clientPort: 9 }, false, nullParser), null);
  assert.equal((await reg.getSingleMetric('mirror_replay_compare_active')!.get()).values[0].value, 1);
});

test('diff log: differences only, credentials redacted, stats lines; report summarises', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-difflog-'));
  try {
    const file = path.join(dir, 'diff.jsonl');
    const { shadow } = setup({ diffLog: file });
    const c = connect(shadow);
    for (let i = 0; i < 4; i++) c.request(req('GET', `/a/${i}?token=abc`));
    c.respond(Buffer.concat([wire(200, 'ok', 'Set-Cookie: sid=prod\r\n'), wire(200, 'ok'), wire(200, 'ok'), wire(200, 'ok')]));
    answer(c.sent[0][0], 200, 'ok', ['set-cookie', 'sid=test', 'authorization', 'Bearer leaked']);
    answer(c.sent[1][0], 503, 'ok');
    answer(c.sent[2][0], 200, 'ok');
    answer(c.sent[3][0], 200, 'ok!');
    shadow.close();
    const text = fs.readFileSync(file, 'utf8');
    for (const secret of ['sid=prod', 'sid=test', 'leaked', 's3cret', 'token=abc']) assert.ok(!text.includes(secret), secret);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.result ?? l.kind), ['header_mismatch', 'status_mismatch', 'body_mismatch', 'stats']);
    assert.deepEqual(lines[0].headerValues.authorization, { production: null, test: '[redacted]' });
    assert.equal(lines[0].route, '/a/:id');
    assert.equal(lines[2].body.test.snippet, 'ok!');
    const r = await buildReport([file]);
    assert.deepEqual(r.compared, { header_mismatch: 1, status_mismatch: 1, match: 1, body_mismatch: 1 });
    assert.equal(r.mismatchRate, 3 / 4);
    assert.deepEqual(r.topRoutes, [{ route: '/a/:id', mismatches: 3, byResult: { header_mismatch: 1, status_mismatch: 1, body_mismatch: 1 } }]);
    assert.match(formatReport(r), /mismatch rate: 75\.00%/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('diff log rotates by size and keeps the configured number of old files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-difflog-'));
  try {
    const file = path.join(dir, 'd.jsonl');
    const log = new DiffLog(file, { maxBytes: 4096, keep: 2, redact: [] });
    for (let i = 0; i < 200; i++) log.stats({ d: { match: i } }, {});
    log.close();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['d.jsonl', 'd.jsonl.1', 'd.jsonl.2']);
    for (const f of fs.readdirSync(dir)) {
      const s = fs.readFileSync(path.join(dir, f), 'utf8');
      assert.ok(s.length <= 4096, `${f}: ${s.length}`);
      for (const l of s.trim().split('\n')) JSON.parse(l); // whole lines only
    }
    assert.equal(log.failedWrites, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("production's side of a TLS connection is lost as tls (not malformed); nothing is compared", async () => {
  const { shadow, counts, reg } = setup();
  const c = connect(shadow);
  c.dropped(1); // the request side counted the connection under tls
  // A ServerHello record's header, then more of it, split across pushes.
  c.respond(Buffer.from([0x16, 0x03]));
  c.respond(Buffer.from([0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03]));
  c.respond(Buffer.alloc(200, 0x5a));
  c.end();
  const lost: Record<string, number> = {};
  for (const v of (await reg.getSingleMetric('mirror_replay_responses_lost_total')!.get()).values) if (v.value) lost[String(v.labels.reason)] = v.value;
  assert.deepEqual(lost, { tls: 1 });
  assert.deepEqual(await counts(), {});
  assert.equal(shadow.connections, 0);
});
