/**
 * Replay to a local sink, one core: requests/s of Destination (our HTTP/1.1 keep-alive client,
 * bounded queue: what the daemon uses) at a few concurrency levels, against a minimal
 * node:net HTTP sink in another process. Baselines in the same run, against the same sink, with
 * the same concurrency: an undici Pool and a bare node:http keep-alive Agent. "ours+digest" is
 * Destination with shadow testing on: every answer digested (status, fields, body SHA-256). Each
 * runs closed loop: a new request as soon as one is answered, until N requests or the time limit.
 */
import http from 'node:http';
import { Pool } from 'undici';
import { Destination, type AnswerSink, type OutgoingRequest } from '../../src/replay/destination.js';
import { closedLoop, printTable, QUICK, ratio, type Row, settlingObserver, startSink } from './util.js';

const HEADERS = [
  'Host', 'shop.example.com', 'User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0', 'Accept', 'application/json',
  'Accept-Encoding', 'gzip, deflate', 'Cookie', 'session=0123456789abcdef0123456789abcdef; theme=dark',
  'X-Request-Id', '7f9c2ba4-e88f-11ee-a1b2-0242ac120002', 'X-Forwarded-For', '10.1.2.3',
];

interface Shape {
  name: string;
  method: string;
  body: Buffer;
}

type Client = (url: string, conns: number, shape: Shape, n: number, maxMs: number) => Promise<{ done: number; errors: number; ms: number; cpuMs: number }>;

export const destination: Client = (url, conns, shape, n, maxMs) => runDestination(url, conns, shape, n, maxMs, false);

/** Destination with shadow testing's answer digest (status, fields, body SHA-256) on every answer. */
const destinationDigest: Client = (url, conns, shape, n, maxMs) => runDestination(url, conns, shape, n, maxMs, true);

async function runDestination(url: string, conns: number, shape: Shape, n: number, maxMs: number, digest: boolean): ReturnType<Client> {
  const { obs, pending } = settlingObserver();
  const d = new Destination(url, { maxConcurrency: conns, maxQueue: 1_000_000, maxQueueBytes: 2 ** 40, timeoutMs: 30_000 }, obs);
  const req: OutgoingRequest = { method: shape.method, target: '/api/v1/items?id=12345', headers: shape.body.length ? [...HEADERS, 'Content-Length', String(shape.body.length)] : HEADERS, body: shape.body, chunked: false, trailers: [], minorVersion: 1 };
  const answer: AnswerSink = { snippetBytes: 0, captureJsonBytes: 0, answered: () => {}, failed: () => {} };
  const r = await closedLoop((ok, fail) => {
    pending.push([ok, fail]);
    // A fresh request per send when digesting: the answer sink travels with it.
    d.enqueue(digest ? { ...req, answer } : req);
  }, n, maxMs, conns);
  await d.drain(1_000);
  return r;
}

export const undiciPool: Client = async (url, conns, shape, n, maxMs) => {
  const pool = new Pool(url, { connections: conns, pipelining: 1 });
  const headers = shape.body.length ? [...HEADERS.slice(2), 'content-length', String(shape.body.length)] : HEADERS.slice(2);
  const r = await closedLoop((ok, fail) => {
    pool.request({ path: '/api/v1/items?id=12345', method: shape.method as 'GET', headers, body: shape.body.length ? shape.body : undefined }).then(
      async (res) => {
        await res.body.dump();
        ok();
      },
      fail,
    );
  }, n, maxMs, conns);
  await pool.close();
  return r;
};

const nodeHttp: Client = async (url, conns, shape, n, maxMs) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns, maxFreeSockets: conns, scheduling: 'lifo' });
  const u = new URL(url);
  const headers = shape.body.length ? [...HEADERS, 'Content-Length', String(shape.body.length)] : HEADERS;
  const r = await closedLoop((ok, fail) => {
    const cr = http.request({ hostname: u.hostname, port: u.port, method: shape.method, path: '/api/v1/items?id=12345', headers, setHost: false, agent }, (res) => {
      res.on('end', ok);
      res.resume();
    });
    cr.on('error', fail);
    cr.end(shape.body.length ? shape.body : undefined);
  }, n, maxMs, conns);
  agent.destroy();
  return r;
};

export async function main(): Promise<void> {
  const sink = await startSink();
  const n = QUICK ? 5_000 : 40_000;
  const maxMs = QUICK ? 1_000 : 3_000;
  const GET: Shape = { name: 'small GET', method: 'GET', body: Buffer.alloc(0) };
  const POST: Shape = { name: '4 KB POST', method: 'POST', body: Buffer.alloc(4096, 0x61) };
  const plans: Array<[Shape, number]> = [[GET, 1], [GET, 8], [GET, 64], [POST, 64]];
  const clients: Array<[string, Client]> = [['Destination (ours)', destination], ['Destination, answers digested', destinationDigest], ['undici Pool', undiciPool], ['node:http Agent', nodeHttp]];
  const rows: Row[] = [];
  try {
    for (const [, c] of clients) await c(sink.url, 8, GET, 3_000, 1_000); // warm-up
    for (const [shape, conns] of plans) {
      const got: Record<string, { rps: number; cpuUs: number; errors: number }> = {};
      for (const [name, c] of clients) {
        const r = await c(sink.url, conns, shape, n, maxMs);
        got[name] = { rps: (r.done * 1e3) / r.ms, cpuUs: (r.cpuMs * 1e3) / Math.max(1, r.done), errors: r.errors };
      }
      const ours = got['Destination (ours)'];
      rows.push({
        requests: shape.name,
        connections: conns,
        'ours req/s': ours.rps,
        'undici req/s': got['undici Pool'].rps,
        'node:http req/s': got['node:http Agent'].rps,
        'ours vs undici': ratio(ours.rps, got['undici Pool'].rps),
        'ours vs node:http': ratio(ours.rps, got['node:http Agent'].rps),
        'ours CPU µs/req': ours.cpuUs,
        'ours+digest req/s': got['Destination, answers digested'].rps,
        'ours+digest CPU µs/req': got['Destination, answers digested'].cpuUs,
        'undici CPU µs/req': got['undici Pool'].cpuUs,
        errors: Object.values(got).reduce((a, g) => a + g.errors, 0),
      });
    }
  } finally {
    await sink.stop();
  }
  printTable('replay: requests/s to a node:net sink in another process, client on one core', rows, [
    'Closed loop: each connection sends its next request when the previous answer ends. CPU µs/req is the client process only.',
  ]);
}
