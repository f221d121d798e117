/**
 * Whole HTTP/2 connections of real clients (test/fixtures/h2: node:http2, curl 7.88, nghttp 1.52,
 * both directions as they went over loopback) through the shadow stage with the real readers on
 * both sides: src/http2/switch.ts for the requests, production.ts + h2answers.ts for the answers.
 * Every request must pair with production's answer on its stream, whichever direction the mirror
 * delivers first and however the bytes are cut.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import client from 'prom-client';
import { pino } from 'pino';
import { compareOptions } from '../../src/compare/compare.js';
import { DiffLog } from '../../src/compare/difflog.js';
import { Shadow, type RequestSide } from '../../src/compare/shadow.js';
import { CompareMetrics } from '../../src/metrics/compare.js';
import { BodyDigest } from '../../src/http/response.js';
import { DEFAULT_HTTP_LIMITS, type HttpRequest } from '../../src/http/types.js';
import { Http1Or2 } from '../../src/http2/switch.js';
import type { AnswerSink } from '../../src/replay/destination.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/h2');
const INFO = { clientAddr: '127.0.0.1', clientPort: 40000, serverAddr: '127.0.0.1', serverPort: 8080, ipVersion: 4 };
const CAPTURES: Array<[string, number]> = [['node', 8], ['curl', 1], ['nghttp', 3]];
type Order = 'requests first' | 'answers first' | 'interleaved';

/** Cuts `b` into pieces of 1..max bytes (a fixed pseudo-random sequence per seed). */
function cuts(b: Buffer, seed: number, max: number): Buffer[] {
  const out: Buffer[] = [];
  let x = seed;
  for (let p = 0; p < b.length; ) {
    x = (x * 1103515245 + 12345) >>> 0;
    const n = Math.min(b.length - p, 1 + (x % max));
    out.push(b.subarray(p, p + n));
    p += n;
  }
  return out;
}

async function run(name: string, order: Order, seed: number) {
  const c2s = fs.readFileSync(path.join(DIR, `${name}.c2s.bin`));
  const s2c = fs.readFileSync(path.join(DIR, `${name}.s2c.bin`));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-h2cap-'));
  try {
    const file = path.join(dir, 'diff.jsonl');
    const reg = new client.Registry();
    const shadow = new Shadow(
      { compare: compareOptions(), routes: [], snippetBytes: 64, captureJsonBytes: 0, destinations: ['http://test'], baseline: -1 },
      new CompareMetrics(reg, ['http://test'], []),
      new DiffLog(file, { maxBytes: 1 << 20, keep: 1, redact: [] }),
      pino({ level: 'silent' }),
    );
    const requests: HttpRequest[] = [];
    const sinks: AnswerSink[] = [];
    let side: RequestSide | null = null;
    const parser = new Http1Or2(
      {
        onRequest: (req) => side!.request(req, (a) => (requests.push(req), sinks.push(a[0]), true)),
        onDrop: (reason, n) => assert.fail(`request side dropped ${n} (${reason})`),
      },
      DEFAULT_HTTP_LIMITS,
      false,
    );
    const rq = shadow.requestSide(INFO, false, parser)!;
    side = rq.side;
    const rs = shadow.responseSink(INFO, false);
    const up = cuts(c2s, seed, 300).map((b) => () => rq.sink.push(b, 0, b.length));
    const down = cuts(s2c, seed + 1, 300).map((b) => () => rs.push(b, 0, b.length));
    const steps = order === 'requests first' ? [...up, ...down] : order === 'answers first' ? [...down, ...up] : up.flatMap((u, i) => (down[i] ? [down[i], u] : [u])).concat(down.slice(up.length));
    for (const s of steps) s();
    // The test environment answers 599, with no body: each pair is a status_mismatch whose diff line shows production's answer.
    for (const a of sinks) {
      const d = new BodyDigest(64, 0, []);
      a.answered(d.finish(599, 1, []));
    }
    rq.sink.end();
    rs.end();
    shadow.close();
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.kind === 'diff');
    return { requests, lines };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const [name, n] of CAPTURES) {
  test(`${name}: every request pairs with production's answer on its stream, in any delivery order`, async () => {
    for (const order of ['requests first', 'answers first', 'interleaved'] as const) {
      for (const seed of [1, 2, 3]) {
        const { requests, lines } = await run(name, order, seed);
        assert.equal(requests.length, n, `${order}, seed ${seed}`);
        assert.equal(lines.length, n);
        for (const l of lines) {
          assert.equal(l.result, 'status_mismatch', `${order}, seed ${seed}: ${JSON.stringify(l)}`);
          assert.equal(l.status.production, 200);
        }
        // The server echoes the path: each line holds the answer to its own request, paired by stream, not by arrival.
        for (const l of lines) assert.equal(l.body.production.snippet.replace(/\?.*/, ''), `you asked for ${l.path}`);
        assert.deepEqual(lines.map((l) => l.path).sort(), requests.map((r) => r.target.split('?')[0]).sort());
      }
    }
  });
}
