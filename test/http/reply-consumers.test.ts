/**
 * The same answer bytes give the same verdict to the replay client and to the comparer: each answer
 * of the corpus (plus answers recorded live from node:http) is served over a real socket to a
 * Destination with shadow testing's answer sink, whole, byte by byte and cut in two at every byte,
 * and pushed the same ways into the digester of production's answers. The digests must be equal,
 * a failure on one side must be a loss on the other, and both must be what the case expects.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { HttpResponseParser, type ResponseDigest } from '../../src/http/response.js';
import { Destination } from '../../src/replay/destination.js';
import type { ReplayObserver } from '../../src/replay/outcome.js';
import { REPLY_CASES, type ReplyCase } from './reply-corpus.js';

const SNIPPET = 64;
const JSON_BYTES = 4096;

type Verdict = { digest: ResponseDigest } | { failed: string };

/** How the answer is cut: whole, one byte per write, or in two at `k`. */
type Cut = 'whole' | 'bytes' | number;

function pieces(wire: Buffer, cut: Cut): Buffer[] {
  if (cut === 'whole') return [wire];
  if (cut === 'bytes') return Array.from({ length: wire.length }, (_, i) => wire.subarray(i, i + 1));
  return [wire.subarray(0, cut), wire.subarray(cut)];
}

function cutsOf(c: ReplyCase): Cut[] {
  const n = Buffer.byteLength(c.wire, 'latin1');
  const cuts: Cut[] = ['whole', ...(c.cuts ?? Array.from({ length: n - 1 }, (_, i) => i + 1))];
  if (n <= 2048) cuts.push('bytes');
  return cuts;
}

/** The comparer's side: the digester of production's answers, fed the same pieces. */
function digesterVerdict(c: ReplyCase, cut: Cut): Verdict {
  const out: Verdict[] = [];
  const p = new HttpResponseParser(
    { requestMethod: () => c.method ?? 'GET', onResponse: (digest) => out.push({ digest }), onLost: (reason) => out.push({ failed: reason }) },
    { snippetBytes: SNIPPET, captureJsonBytes: JSON_BYTES },
  );
  for (const piece of pieces(Buffer.from(c.wire, 'latin1'), cut)) p.push(piece, 0, piece.length);
  p.end();
  assert.equal(out.length, 1, `${c.name}, cut ${cut}: one verdict, got ${JSON.stringify(out)}`);
  return out[0];
}

/** A raw server: `GET /<case>/<cut>` is answered with that case's bytes, cut that way. */
async function answerServer(cases: ReplyCase[]) {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.setNoDelay(true);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        const [, idx, cut] = /^[A-Z]+ \/(\d+)\/(\w+) /.exec(buf)!;
        buf = buf.slice(i + 4);
        const c = cases[Number(idx)];
        write(s, pieces(Buffer.from(c.wire, 'latin1'), cut === 'whole' || cut === 'bytes' ? cut : Number(cut)), c.close === true);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      srv.close(() => r());
    }),
  };
}

/** Writes each piece in its own event-loop turn, so the client reads them apart. */
function write(s: net.Socket, parts: Buffer[], close: boolean): void {
  let i = 0;
  const step = () => {
    if (s.destroyed) return;
    if (i < parts.length) {
      s.write(parts[i++]);
      setImmediate(step);
    } else if (close) s.end();
  };
  step();
}

/** The replay client's side: every (case, cut) sent through one Destination, answers digested. */
async function clientVerdicts(cases: ReplyCase[], jobs: Array<[number, Cut]>): Promise<{ verdicts: Verdict[]; errors: Record<string, number> }> {
  const srv = await answerServer(cases);
  const errors: Record<string, number> = {};
  const obs: ReplayObserver = { replayed: () => {}, dropped: () => {}, altered: () => {}, error: (_d, code) => (errors[code] = (errors[code] ?? 0) + 1) };
  const dest = new Destination(srv.url, { maxConcurrency: 8, maxQueue: 1_000_000, maxQueueBytes: 2 ** 30, timeoutMs: 20_000 }, obs);
  try {
    const verdicts = await Promise.all(
      jobs.map(
        ([idx, cut]) =>
          new Promise<Verdict>((resolve) => {
            const c = cases[idx];
            dest.enqueue({
              method: c.method ?? 'GET',
              target: `/${idx}/${cut}`,
              headers: ['Host', 'test'],
              body: Buffer.alloc(0),
              chunked: false,
              trailers: [],
              minorVersion: 1,
              answer: { snippetBytes: SNIPPET, captureJsonBytes: JSON_BYTES, answered: (digest) => resolve({ digest }), failed: (reason) => resolve({ failed: reason }) },
            });
          }),
      ),
    );
    return { verdicts, errors };
  } finally {
    await dest.drain(1_000);
    await srv.close();
  }
}

const sha = (s: string) => createHash('sha256').update(Buffer.from(s, 'latin1')).digest('hex');

function assertExpected(c: ReplyCase, v: Verdict, side: string): void {
  const e = c.expect;
  if ('error' in e) {
    assert.ok('failed' in v, `${c.name} (${side}): expected ${e.error}, got an answer`);
    return;
  }
  assert.ok('digest' in v, `${c.name} (${side}): expected an answer, got ${JSON.stringify(v)}`);
  const d = v.digest;
  assert.deepEqual([d.status, d.bodyLength, d.bodySha256], [e.status, e.body.length, sha(e.body)], `${c.name} (${side})`);
  if (e.headers) assert.deepEqual(d.headers, e.headers, `${c.name} (${side})`);
}

/** Answers from a real server: node:http, recorded as it wrote them (it closes after each: Connection: close). */
async function recordNodeAnswers(): Promise<ReplyCase[]> {
  const srv = http.createServer((req, res) => {
    if (req.url === '/chunked') {
      res.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Sum' });
      res.write('first,');
      res.write('second');
      res.addTrailers({ 'X-Sum': '12' });
      res.end();
    } else if (req.url === '/hints') {
      res.writeEarlyHints({ link: '</a.css>; rel=preload' });
      res.end('after hints');
    } else if (req.url === '/204') {
      res.writeHead(204).end();
    } else if (req.url === '/304') {
      res.writeHead(304, { ETag: '"v1"' }).end();
    } else res.end('x'.repeat(3000));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const record = (method: string, path: string) =>
    new Promise<string>((resolve, reject) => {
      const parts: Buffer[] = [];
      const s = net.connect(port, '127.0.0.1', () => s.write(`${method} ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`));
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('error', reject);
      s.on('close', () => resolve(Buffer.concat(parts).toString('latin1')));
    });
  try {
    return [
      { name: 'node:http chunked with trailers', wire: await record('GET', '/chunked'), expect: { status: 200, body: 'first,second' } },
      { name: 'node:http 103 then the answer', wire: await record('GET', '/hints'), expect: { status: 200, body: 'after hints' } },
      { name: 'node:http 204', wire: await record('DELETE', '/204'), method: 'DELETE', expect: { status: 204, body: '' } },
      { name: 'node:http 304', wire: await record('GET', '/304'), expect: { status: 304, body: '' } },
      { name: 'node:http answer to HEAD', wire: await record('HEAD', '/'), method: 'HEAD', expect: { status: 200, body: '' } },
      { name: 'node:http 3000-byte body', wire: await record('GET', '/'), cuts: [1, 50, 120, 1000, 2999], expect: { status: 200, body: 'x'.repeat(3000) } },
    ];
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

const servers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of servers) await close();
});

test('the replay client and the comparer give every answer the same verdict, however it is cut', async () => {
  const live = await recordNodeAnswers();
  assert.match(live[0].wire, /Transfer-Encoding: chunked\r\n[\s\S]*X-Sum: 12\r\n\r\n$/, 'node:http wrote a chunked answer with a trailer');
  assert.match(live[1].wire, /^HTTP\/1\.1 103 Early Hints\r\n/);
  const cases = [...REPLY_CASES, ...live];
  const jobs: Array<[number, Cut]> = [];
  cases.forEach((c, i) => {
    for (const cut of cutsOf(c)) jobs.push([i, cut]);
  });
  const { verdicts, errors } = await clientVerdicts(cases, jobs);
  let bad = 0;
  let cutShort = 0;
  jobs.forEach(([idx, cut], j) => {
    const c = cases[idx];
    const client = verdicts[j];
    const digester = digesterVerdict(c, cut);
    assertExpected(c, client, `replay client, cut ${cut}`);
    assertExpected(c, digester, `comparer, cut ${cut}`);
    if ('digest' in client) {
      assert.deepEqual(client, digester, `${c.name}, cut ${cut}: the same digest on both sides`);
    } else {
      assert.equal(client.failed, 'upstream_error', `${c.name}, cut ${cut}`);
      assert.equal((digester as { failed: string }).failed, (c.expect as { error: string }).error, `${c.name}, cut ${cut}`);
      if ((c.expect as { error: string }).error === 'incomplete') cutShort++;
      else bad++;
    }
  });
  assert.deepEqual(errors, { ...(bad ? { MR_BAD_RESPONSE: bad } : {}), ...(cutShort ? { ECONNRESET: cutShort } : {}) }, 'the client failed each refused answer as MR_BAD_RESPONSE, each cut-short one as ECONNRESET');
  assert.ok(jobs.length > 3000, `${jobs.length} exchanges`);
});
