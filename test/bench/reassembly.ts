/**
 * Reassembly, one core: FlowTable.onPacket over 256 interleaved client-to-server flows of
 * 1448-byte segments, with a trivial sink that only counts bytes. The packets are decoded
 * once; each iteration rewrites the sequence number of a reused Packet, so the loop measures
 * the table alone. Cases: in order, and 10% reordered (every tenth segment arrives before the
 * one in front of it, so it is copied and held). The in-order case is the baseline.
 * One case adds a server ACK after each segment (both directions captured, as with --compare or a
 * pcap of both): each server segment costs a flow lookup, to follow the server side.
 * A last case puts the real HttpRequestParser behind the table (pipelined small GETs), to show
 * what the in-order path costs and allocates once HTTP is parsed.
 */
import { Decoder } from '../../src/decode/decoder.js';
import { Packet } from '../../src/decode/packet.js';
import { HttpRequestParser } from '../../src/http/parser.js';
import { FlowTable } from '../../src/reassemble/table.js';
import type { StreamSink } from '../../src/reassemble/stream.js';
import { buildFrame, TCP_ACK, TCP_PSH } from '../fixtures/frames.js';
import { allocationProbe, fmt, printTable, QUICK, ratio, timeLoop, type Row } from './util.js';

const FLOWS = 256;
const SEG = 1448;
const ISN = 0xfffff000; // wraps past 2^32 early on

class CountingSink implements StreamSink {
  bytes = 0;
  gaps = 0;
  push(_buf: Uint8Array, _off: number, len: number): void {
    this.bytes = (this.bytes + len) & 0x3fffffff; // a Smi: the sum itself is not needed
  }
  gap(bytes: number): void {
    this.gaps += bytes;
  }
  taint(): void {}
  stalled(): void {}
  end(): void {}
  get bufferedBytes(): number {
    return 0;
  }
  get pendingBytes(): number {
    return 0;
  }
}

/** One decoded Packet per flow (a copy of the decoder's reused one), payload `payload`; `server`: a server-to-client one. */
function templates(payload: Buffer, server = false): Packet[] {
  const dec = new Decoder(80);
  const out: Packet[] = [];
  for (let f = 0; f < FLOWS; f++) {
    const client = { ip: `10.1.${f >> 8}.${f & 255}`, port: 20000 + f };
    const ends = server ? { src: '10.0.0.80', dst: client.ip, sport: 80, dport: client.port } : { src: client.ip, dst: '10.0.0.80', sport: client.port, dport: 80 };
    const frame = buildFrame({ ...ends, seq: ISN, flags: TCP_ACK | TCP_PSH, payload });
    const p = dec.decode(frame, 0, frame.length, frame.length)!;
    const q = new Packet();
    const { src: _s, dst: _d, ...fields } = p;
    Object.assign(q, fields);
    q.src.set(p.src);
    q.dst.set(p.dst);
    q.buf = frame;
    out.push(q);
  }
  return out;
}

// Position (in segments) of the k-th send within a block of ten: 1 before 0, the rest in order.
const REORDER = [1, 0, 2, 3, 4, 5, 6, 7, 8, 9];

export async function main(): Promise<void> {
  const maxSegs = QUICK ? 300_000 : 3_000_000;
  const maxMs = QUICK ? 500 : 2_500;
  const rows: Row[] = [];
  let inOrderNs = 0;

  for (const c of [
    { name: 'in order', reorder: false, http: false },
    { name: '10% reordered', reorder: true, http: false },
    { name: 'in order, a server ACK after each (both directions)', reorder: false, http: false, acks: true },
    { name: 'in order, HTTP parser as sink (pipelined GETs)', reorder: false, http: true },
  ]) {
    let requests = 0;
    const sinks: StreamSink[] = [];
    const table = new FlowTable({ port: 80, holeTimeoutMs: 3_600_000, idleTimeoutMs: 3_600_000 }, (_info, midstream) => {
      const s: StreamSink = c.http
        ? (new HttpRequestParser({ onRequest: () => requests++, onDrop: () => {} }, undefined, { midstream }) as unknown as StreamSink)
        : new CountingSink();
      sinks.push(s);
      return s;
    });
    // For the HTTP case the payload is pipelined GETs cut at 1448 bytes, as TCP would cut them.
    const get = 'GET /api/items?id=12345 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nCookie: session=0123456789abcdef\r\n\r\n';
    const pk = templates(Buffer.alloc(SEG, 0x61));
    const acks = c.acks ? templates(Buffer.alloc(0), true) : null;
    const sent = new Float64Array(FLOWS);
    const one = (i: number) => {
      const f = i % FLOWS;
      const k = sent[f]++;
      const pos = c.reorder ? k - (k % 10) + REORDER[k % 10] : k;
      const p = pk[f];
      if (c.http) {
        // Segment `pos` of the endless pipelined stream starts at byte (pos*SEG) % get.length of a request.
        const start = (pos * SEG) % get.length;
        p.buf = slices[start];
      }
      p.seq = (ISN + pos * SEG) >>> 0;
      table.onPacket(p, 0);
      if (acks) table.onPacket(acks[f], 0);
    };
    // Frames whose payload is the pipelined stream starting at each offset modulo get.length.
    const slices: Buffer[] = [];
    if (c.http) {
      const stream = Buffer.from(get.repeat(Math.ceil((SEG * 2) / get.length) + 2), 'latin1');
      const hdr = pk[0].payloadOffset;
      for (let s = 0; s < get.length; s++) {
        const b = Buffer.alloc(hdr + SEG);
        stream.copy(b, hdr, s, s + SEG);
        slices.push(b);
      }
      for (const p of pk) p.payloadLength = SEG;
    }
    timeLoop({ maxIters: 300_000, maxMs: 1_500 }, one); // warm-up, creates the flows
    const r0 = requests;
    const t = timeLoop({ maxIters: maxSegs, maxMs }, one);
    const reqs = requests - r0;
    const alloc = await allocationProbe(() => timeLoop({ maxIters: 1_000_000, maxMs: 5_000 }, one).iters);
    const ns = t.ns / t.iters;
    if (!c.reorder && !c.http && !c.acks) inOrderNs = ns;
    const bytes = sinks.reduce((a, s) => a + ((s as CountingSink).bytes ?? 0), 0);
    rows.push({
      case: c.name,
      'segments/s': (t.iters * 1e9) / t.ns,
      'ns/segment': ns,
      'MB/s': (t.iters * SEG * 1e3) / t.ns,
      'vs in order': c.http ? '' : ratio(ns, inOrderNs),
      'out of order (copied)': fmt(table.event('out_of_order')),
      'GCs in 1M segments': `${alloc.scavenges} minor, ${alloc.majorGcs} major`,
      'heap B/segment': fmt(alloc.heapBytesPerIter, 3),
      'requests/s': c.http ? (reqs * 1e9) / t.ns : '',
    });
    if (bytes === -1) console.log(bytes);
  }
  printTable('reassembly: FlowTable.onPacket, 256 flows, 1448-byte segments, one core', rows, [
    'GCs/heap: after warm-up and a forced GC, over up to 1M segments (node --expose-gc). The reordered case copies its out-of-order segments by design.',
    'The server-ACK row counts one client segment plus one server ACK per segment.',
    'The HTTP row includes parsing; its allocations are the requests themselves (strings, header arrays) plus any per-push view the parser makes.',
  ]);
}
