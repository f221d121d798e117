/**
 * HTTP parsing, one core: HttpRequestParser.push over a client stream cut into 1448-byte
 * pushes (one MSS each), as reassembly hands it on. Baselines in the same run, both lower
 * bounds rather than rival parsers:
 *  - small requests: finding each request's end with Buffer.indexOf('\r\n\r\n') and nothing else;
 *  - large bodies: copying every pushed byte once into a preallocated buffer (a body must be
 *    copied out of the ring's views anyway).
 */
import { HttpRequestParser } from '../../src/http/parser.js';
import { allocationProbe, fmt, printTable, QUICK, ratio, timeLoop, type Row } from './util.js';

const MSS = 1448;
const CRLFCRLF = Buffer.from('\r\n\r\n');

const GET =
  'GET /api/v1/items?id=12345&view=full HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/1.0\r\n' +
  'Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\nAccept-Language: en-GB,en;q=0.9\r\nCookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n' +
  'X-Request-Id: 7f9c2ba4-e88f-11ee-a1b2-0242ac120002\r\n\r\n';

function post(bodyLen: number): Buffer {
  const head = `POST /api/v1/upload HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: bench/1.0\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bodyLen}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.alloc(bodyLen, 0x61)]);
}

function chunkedPost(bodyLen: number, chunk: number): Buffer {
  const parts: Buffer[] = [Buffer.from('POST /api/v1/upload HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1')];
  for (let left = bodyLen; left > 0; left -= chunk) {
    const n = Math.min(chunk, left);
    parts.push(Buffer.from(`${n.toString(16)}\r\n`, 'latin1'), Buffer.alloc(n, 0x62), Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return Buffer.concat(parts);
}

interface Case {
  name: string;
  /** One or more whole requests, back to back. */
  stream: Buffer;
  requests: number;
  /** Push size: an MSS, or one push per request. */
  push: number;
  baseline: 'scan' | 'copy';
}

export async function main(): Promise<void> {
  const maxMs = QUICK ? 400 : 2_000;
  const cases: Case[] = [
    { name: `small GET (${GET.length} B, 8 fields), one per push`, stream: Buffer.from(GET, 'latin1'), requests: 1, push: GET.length, baseline: 'scan' },
    { name: 'small GET, pipelined, 1448-byte pushes', stream: Buffer.from(GET.repeat(MSS), 'latin1'), requests: MSS, push: MSS, baseline: 'scan' },
    { name: '4 KB POST (Content-Length)', stream: post(4096), requests: 1, push: MSS, baseline: 'copy' },
    { name: '1 MB POST (Content-Length)', stream: post(1 << 20), requests: 1, push: MSS, baseline: 'copy' },
    { name: '1 MB POST (chunked, 16 KiB chunks)', stream: chunkedPost(1 << 20, 16384), requests: 1, push: MSS, baseline: 'copy' },
  ];
  const rows: Row[] = [];
  for (const c of cases) {
    let requests = 0;
    let drops = 0;
    let bodyBytes = 0;
    const parser = new HttpRequestParser({ onRequest: (r) => { requests++; bodyBytes += r.body.length; }, onDrop: () => drops++ });
    const s = c.stream;
    const pushes = Math.ceil(s.length / c.push);
    // One iteration = one push; the stream repeats, and always ends on a request boundary.
    let next = 0;
    const one = () => {
      const off = next * c.push;
      next = next + 1 === pushes ? 0 : next + 1;
      parser.push(s, off, Math.min(c.push, s.length - off));
    };
    const copyTo = Buffer.allocUnsafe(s.length);
    let found = 0;
    let carry = 0;
    const base = c.baseline === 'scan'
      ? (i: number) => {
          const off = (i % pushes) * c.push; // i counts from 0 in each loop: the scan has no state to break
          const end = Math.min(off + c.push, s.length);
          // Requests ending in this push; a terminator split across pushes is found from carry.
          for (let p = s.indexOf(CRLFCRLF, Math.max(0, off - carry)); p >= 0 && p + 4 <= end; p = s.indexOf(CRLFCRLF, p + 4)) found++;
          carry = 3;
        }
      : (i: number) => {
          const off = (i % pushes) * c.push;
          s.copy(copyTo, off, off, Math.min(off + c.push, s.length));
        };
    const maxIters = Math.max(pushes * 2, QUICK ? 200_000 : 2_000_000);
    timeLoop({ maxIters: Math.min(maxIters, 100_000), maxMs: 500, batch: pushes }, one);
    timeLoop({ maxIters: Math.min(maxIters, 100_000), maxMs: 500, batch: pushes }, base);
    const r0 = requests;
    const b0 = bodyBytes;
    // Whole passes over the stream, so every timed request is complete.
    const t = timeLoop({ maxIters: Math.ceil(maxIters / pushes) * pushes, maxMs, batch: pushes }, one);
    const reqs = requests - r0;
    const b = timeLoop({ maxIters: Math.ceil(maxIters / pushes) * pushes, maxMs, batch: pushes }, base);
    const alloc = await allocationProbe(() => timeLoop({ maxIters: Math.ceil(200_000 / pushes) * pushes, maxMs: 2_000, batch: pushes }, one).iters);
    const bytes = (t.iters / pushes) * s.length;
    const baseBytes = (b.iters / pushes) * s.length;
    rows.push({
      case: c.name,
      'requests/s': (reqs * 1e9) / t.ns,
      'MB/s': (bytes * 1e3) / t.ns,
      'µs/request': t.ns / 1e3 / Math.max(1, reqs),
      baseline: c.baseline === 'scan' ? 'indexOf CRLFCRLF' : 'memcpy',
      'baseline MB/s': (baseBytes * 1e3) / b.ns,
      'parser vs baseline': ratio(t.ns / bytes, b.ns / baseBytes),
      'heap B/request': fmt((alloc.heapBytesPerIter * pushes) / c.requests, 0),
    });
    if (drops) rows[rows.length - 1].case += ` (${drops} dropped!)`;
    if (found === -1 || bodyBytes - b0 < 0) console.log(found);
  }
  printTable('http: HttpRequestParser.push, one core', rows, [
    '"parser vs baseline": time per byte, parser ÷ baseline (lower is better; 1.00× = as cheap as the baseline).',
    'heap B/request: JS heap allocated per request (v8.GCProfiler); body bytes live outside the JS heap.',
  ]);
}
