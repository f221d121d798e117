import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import fc from 'fast-check';
import { buildTcpPortFilter, SNAP_LEN } from '../../src/capture/bpf.js';
import { CaptureError } from '../../src/errors.js';
import { buildFrame, type FrameSpec } from '../fixtures/frames.js';

/**
 * A classic BPF interpreter with the kernel's semantics for what our filters use: a load past
 * the end of the frame ends the program with 0 (reject).
 */
function runBpf(prog: Buffer, frame: Uint8Array, wireLen: number): number {
  const le = endianness() === 'LE';
  const n = prog.length / 8;
  const mem = new Uint32Array(16);
  let A = 0;
  let X = 0;
  const ld = (off: number, size: number): number | undefined => {
    if (off < 0 || off + size > frame.length) return undefined;
    let v = 0;
    for (let i = 0; i < size; i++) v = (v * 256 + frame[off + i]) >>> 0;
    return v;
  };
  for (let pc = 0, steps = 0; pc < n && steps < 4096; pc++, steps++) {
    const o = pc * 8;
    const code = le ? prog.readUInt16LE(o) : prog.readUInt16BE(o);
    const jt = prog[o + 2];
    const jf = prog[o + 3];
    const k = le ? prog.readUInt32LE(o + 4) : prog.readUInt32BE(o + 4);
    const cls = code & 0x07;
    const size = { 0x00: 4, 0x08: 2, 0x10: 1 }[code & 0x18] ?? 4;
    const mode = code & 0xe0;
    const src = code & 0x08 ? X : k;
    switch (cls) {
      case 0x00: /* LD */ {
        let v: number | undefined;
        if (mode === 0x00) v = k;
        else if (mode === 0x20) v = ld(k, size);
        else if (mode === 0x40) v = ld(X + k, size);
        else if (mode === 0x60) v = mem[k & 15];
        else if (mode === 0x80) v = wireLen;
        if (v === undefined) return 0;
        A = v >>> 0;
        break;
      }
      case 0x01: /* LDX */ {
        if (mode === 0x00) X = k;
        else if (mode === 0x60) X = mem[k & 15];
        else if (mode === 0x80) X = wireLen;
        else if (mode === 0xa0) {
          const b = ld(k, 1);
          if (b === undefined) return 0;
          X = (b & 0xf) * 4;
        } else throw new Error(`bad ldx mode ${mode}`);
        break;
      }
      case 0x02: mem[k & 15] = A; break;
      case 0x03: mem[k & 15] = X; break;
      case 0x04: /* ALU */ {
        const op = code & 0xf0;
        if (op === 0x00) A = (A + src) >>> 0;
        else if (op === 0x10) A = (A - src) >>> 0;
        else if (op === 0x20) A = Math.imul(A, src) >>> 0;
        else if (op === 0x50) A = (A & src) >>> 0;
        else if (op === 0x40) A = (A | src) >>> 0;
        else if (op === 0x60) A = (A << src) >>> 0;
        else if (op === 0x70) A = A >>> src;
        else throw new Error(`bad alu op ${op}`);
        break;
      }
      case 0x05: /* JMP */ {
        const op = code & 0xf0;
        if (op === 0x00) { pc += k; break; }
        const t = op === 0x10 ? A === src : op === 0x20 ? A > src : op === 0x30 ? A >= src : op === 0x40 ? (A & src) !== 0 : undefined;
        if (t === undefined) throw new Error(`bad jmp op ${op}`);
        pc += t ? jt : jf;
        break;
      }
      case 0x06: return code & 0x10 ? A : k;
      case 0x07: if (code & 0x80) A = X; else X = A; break;
    }
  }
  throw new Error('program fell off the end or looped');
}

const P = 8080;
const base: FrameSpec = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: P, seq: 1, payload: 'GET / HTTP/1.1\r\n\r\n' };
const base6: FrameSpec = { ...base, src: 'fd00::1', dst: 'fd00::2' };
const run = (f: Buffer, port = P, bothDirections = false): number => runBpf(buildTcpPortFilter(port, { bothDirections }), f, f.length);
const accepts = (f: Buffer, port = P, both = false): void => assert.equal(run(f, port, both), SNAP_LEN);
const rejects = (f: Buffer, port = P, both = false): void => assert.equal(run(f, port, both), 0);

test('bpf: IPv4 TCP to the port is accepted whole; other ports are rejected', () => {
  accepts(buildFrame(base));
  rejects(buildFrame({ ...base, dport: 8081 }));
  // Byte order: 8080 = 0x1f90; a frame to 0x901f must not match.
  rejects(buildFrame({ ...base, dport: 0x901f }));
});

test('bpf: source port matches only with bothDirections', () => {
  const resp = buildFrame({ ...base, sport: P, dport: 40000 });
  rejects(resp);
  accepts(resp, P, true);
  accepts(buildFrame(base), P, true);
  rejects(buildFrame({ ...base, sport: 1, dport: 2 }), P, true);
  const resp6 = buildFrame({ ...base6, sport: P, dport: 40000 });
  rejects(resp6);
  accepts(resp6, P, true);
});

test('bpf: IPv4 options shift the TCP header (IHL is honoured)', () => {
  for (const len of [4, 8, 40]) {
    const ipOptions = new Uint8Array(len).fill(1); // NOPs
    accepts(buildFrame({ ...base, ipOptions }));
    rejects(buildFrame({ ...base, ipOptions, dport: 9 }));
  }
  // A fixed offset (14+20+2) would read option bytes 2..3 here; make them spell P to catch that.
  rejects(buildFrame({ ...base, ipOptions: new Uint8Array([1, 1, P >> 8, P & 0xff]), sport: 1, dport: 2 }));
});

test('bpf: 802.1Q, 802.1ad and QinQ tags', () => {
  for (const vlans of [[10], [10, 20]]) {
    accepts(buildFrame({ ...base, vlans }));
    accepts(buildFrame({ ...base6, vlans }));
    rejects(buildFrame({ ...base, vlans, dport: 9 }));
    rejects(buildFrame({ ...base6, vlans, dport: 9 }));
  }
  const ad = buildFrame({ ...base, vlans: [10, 20] });
  ad.writeUInt16BE(0x88a8, 12);
  accepts(ad);
  const adInner = buildFrame({ ...base6, vlans: [10, 20] });
  adInner.writeUInt16BE(0x88a8, 12);
  adInner.writeUInt16BE(0x88a8, 16);
  accepts(adInner);
  // Three tags are beyond what we match in the kernel.
  rejects(buildFrame({ ...base, vlans: [1, 2, 3] }));
});

test('bpf: IPv6 TCP, and extension headers left to userspace', () => {
  accepts(buildFrame(base6));
  rejects(buildFrame({ ...base6, dport: 9 }));
  for (const ipv6Ext of [[0], [43], [60], [0, 60]]) accepts(buildFrame({ ...base6, ipv6Ext, dport: 9 }));
  accepts(buildFrame({ ...base6, dport: 9, ipv6Fragment: { offset: 100, more: false } }));
});

test('bpf: IPv4 fragments: non-first accepted regardless of port, first fragment tested', () => {
  accepts(buildFrame({ ...base, dport: 9, ipv4Fragment: { offset: 185, more: true } }));
  accepts(buildFrame({ ...base, ipv4Fragment: { offset: 0, more: true } }));
  rejects(buildFrame({ ...base, dport: 9, ipv4Fragment: { offset: 0, more: true } }));
});

test('bpf: UDP, ARP and other protocols are rejected', () => {
  const udp = buildFrame(base);
  udp[14 + 9] = 17;
  rejects(udp);
  const udp6 = buildFrame(base6);
  udp6[14 + 6] = 17;
  rejects(udp6);
  const arp = Buffer.alloc(42);
  arp.writeUInt16BE(0x0806, 12);
  rejects(arp);
  const icmp = buildFrame(base);
  icmp[14 + 9] = 1;
  rejects(icmp);
});

test('bpf: truncated frames are rejected, not read past their end', () => {
  const f = buildFrame(base);
  for (const len of [0, 6, 13, 14, 20, 23, 34, 35, 36, 37]) rejects(f.subarray(0, len));
  accepts(f.subarray(0, 38)); // enough for the destination port
  const f6 = buildFrame(base6);
  rejects(f6.subarray(0, 14 + 40 + 3));
  accepts(f6.subarray(0, 14 + 40 + 4));
});

test('bpf: any port matches itself and nothing else (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), fc.boolean(), (p, q, v6) => {
      const f = buildFrame({ ...(v6 ? base6 : base), sport: 1, dport: q });
      return run(f, p) === (p === q ? SNAP_LEN : 0);
    }),
    { numRuns: 300 },
  );
});

test('bpf: invalid ports throw CaptureError', () => {
  for (const p of [0, -1, 65536, 1.5, Number.NaN]) {
    assert.throws(() => buildTcpPortFilter(p), (e: unknown) => e instanceof CaptureError && e.code === 'MR_CAPTURE');
  }
  assert.equal(buildTcpPortFilter(1).length % 8, 0);
  assert.ok(buildTcpPortFilter(65535, { bothDirections: true }).length / 8 < 4096); // BPF_MAXINSNS
});

test('buildUdpPortFilter keeps whole VXLAN datagrams to the port and nothing else', async () => {
  const { buildUdpPortFilter } = await import('../../src/capture/bpf.js');
  const { vxlanFrame } = await import('../fixtures/vxlan.js');
  const prog = buildUdpPortFilter(4789);
  const inner = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1000, dport: 80, seq: 1, payload: 'GET / HTTP/1.1\r\n\r\n' });
  const vx = vxlanFrame({ vni: 7, inner });
  assert.equal(runBpf(prog, vx, vx.length), SNAP_LEN);
  const other = vxlanFrame({ vni: 7, inner, dport: 4790 });
  assert.equal(runBpf(prog, other, other.length), 0);
  assert.equal(runBpf(prog, inner, inner.length), 0, 'TCP is not UDP');
  assert.throws(() => buildUdpPortFilter(0), CaptureError);
});

test('buildTunnelFilter keeps VXLAN and GENEVE datagrams (and IPv4 UDP fragments), nothing else', async () => {
  const { buildTunnelFilter } = await import('../../src/capture/bpf.js');
  const { vxlanFrame } = await import('../fixtures/vxlan.js');
  const { gwlbMirrorFrame } = await import('../fixtures/geneve.js');
  const { vxlanPayload } = await import('../fixtures/vxlan.js');
  const prog = buildTunnelFilter();
  const inner = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1000, dport: 80, seq: 1, payload: 'GET / HTTP/1.1\r\n\r\n' });
  const run = (f: Buffer) => runBpf(prog, f, f.length);
  assert.equal(run(vxlanFrame({ vni: 7, inner })), SNAP_LEN);
  assert.equal(run(gwlbMirrorFrame(vxlanPayload(7, inner))), SNAP_LEN);
  assert.equal(run(vxlanFrame({ vni: 7, inner, dport: 4790 })), 0);
  assert.equal(run(inner), 0, 'TCP is not a tunnel');
  const frag = vxlanFrame({ vni: 7, inner });
  frag.writeUInt16BE(0x0010, 14 + 6); // fragment offset 16 bytes, no ports
  assert.equal(run(frag), SNAP_LEN);
  assert.throws(() => buildTunnelFilter([]), CaptureError);
});
