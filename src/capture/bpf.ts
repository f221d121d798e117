/**
 * A classic BPF program, assembled in code at startup (no tcpdump), that keeps TCP segments to
 * (and optionally from) one port and rejects everything else in the kernel.
 *
 * What it accepts, and why:
 * - Ethernet with 0, 1 or 2 in-band 802.1Q/802.1ad tags (0x8100/0x88a8). On receive the kernel
 *   moves the outermost tag into skb metadata before packet sockets (and this filter) see the
 *   frame, so a single tag is usually gone by then; QinQ's inner tag stays in-band. Matching tags
 *   in-band covers both cases without the SKF_AD_VLAN_* extensions.
 * - IPv4 with any IHL (BPF_MSH reads it), protocol TCP, destination port == P (or source port
 *   with `bothDirections`). IPv4 TCP fragments with a non-zero offset carry no ports, so they are
 *   all accepted: dropping them here would hide them from decode, which counts them.
 * - IPv6 with next header TCP and the port test; IPv6 whose first next header is an extension
 *   (hop-by-hop 0, routing 43, destination options 60, fragment 44) is accepted regardless of
 *   port, because classic BPF cannot walk the chain. Decode walks it and filters.
 * - Accepted frames are kept whole (return 262144): a snap length below the frame cuts jumbo
 *   and GRO frames (up to 64 KiB) silently.
 * A load past the end of a frame makes the kernel return 0, so truncated frames are rejected.
 */
import { endianness } from 'node:os';
import { CaptureError } from '../errors.js';

export const SNAP_LEN = 262144;

export interface TcpPortFilterOptions {
  /** Also accept segments whose source port is P (response capture). */
  bothDirections?: boolean;
}

// Classic BPF opcodes (linux/filter.h).
const LD_H_ABS = 0x28;
const LD_B_ABS = 0x30;
const LD_H_IND = 0x48;
const LDX_B_MSH = 0xb1;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const RET_K = 0x06;

const LITTLE_ENDIAN = endianness() === 'LE';

const ETH_8021Q = 0x8100;
const ETH_8021AD = 0x88a8;
const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const IPPROTO_TCP = 6;
const IPV6_EXT_HEADERS = [0, 43, 60, 44];

type Target = string | number; // a label, or a literal relative offset (0 = next instruction)
interface Insn {
  code: number;
  jt: Target;
  jf: Target;
  k: number;
}

/** A tiny assembler: forward jumps by label, resolved to 8-bit relative offsets. */
class Assembler {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();

  label(name: string): void {
    this.labels.set(name, this.insns.length);
  }
  stmt(code: number, k: number): void {
    this.insns.push({ code, jt: 0, jf: 0, k });
  }
  jump(code: number, k: number, jt: Target, jf: Target = 0): void {
    this.insns.push({ code, jt, jf, k });
  }
  assemble(): Buffer {
    const out = Buffer.alloc(this.insns.length * 8);
    this.insns.forEach((ins, i) => {
      const off = (t: Target): number => {
        if (typeof t === 'number') return t;
        const at = this.labels.get(t);
        if (at === undefined) throw new Error(`bpf: undefined label ${t}`);
        const rel = at - i - 1;
        if (rel < 0 || rel > 255) throw new Error(`bpf: jump to ${t} out of range (${rel})`);
        return rel;
      };
      const o = i * 8;
      if (LITTLE_ENDIAN) {
        out.writeUInt16LE(ins.code, o);
        out.writeUInt32LE(ins.k >>> 0, o + 4);
      } else {
        out.writeUInt16BE(ins.code, o);
        out.writeUInt32BE(ins.k >>> 0, o + 4);
      }
      out[o + 2] = off(ins.jt);
      out[o + 3] = off(ins.jf);
    });
    return out;
  }
}

/**
 * The packed `struct sock_filter[]` (8 bytes each, host byte order) for SO_ATTACH_FILTER.
 * Throws CaptureError if `port` is not 1..65535.
 */
export function buildTcpPortFilter(port: number, opts: TcpPortFilterOptions = {}): Buffer {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CaptureError(`capture port must be an integer in 1..65535, got ${String(port)}`);
  }
  const a = new Assembler();

  a.stmt(LD_H_ABS, 12);
  a.jump(JEQ_K, ETH_8021Q, 'vlan1');
  a.jump(JEQ_K, ETH_8021AD, 'vlan1');
  a.jump(JEQ_K, ETH_IPV4, 'ip4_14');
  a.jump(JEQ_K, ETH_IPV6, 'ip6_14', 'reject');

  a.label('vlan1');
  a.stmt(LD_H_ABS, 16);
  a.jump(JEQ_K, ETH_8021Q, 'vlan2');
  a.jump(JEQ_K, ETH_8021AD, 'vlan2');
  a.jump(JEQ_K, ETH_IPV4, 'ip4_18');
  a.jump(JEQ_K, ETH_IPV6, 'ip6_18', 'reject');

  a.label('vlan2');
  a.stmt(LD_H_ABS, 20);
  a.jump(JEQ_K, ETH_IPV4, 'ip4_22');
  a.jump(JEQ_K, ETH_IPV6, 'ip6_22', 'reject');

  for (const l3 of [14, 18, 22]) {
    a.label(`ip4_${l3}`);
    a.stmt(LD_B_ABS, l3 + 9);
    a.jump(JEQ_K, IPPROTO_TCP, 0, 'reject');
    a.stmt(LD_H_ABS, l3 + 6);
    a.jump(JSET_K, 0x1fff, 'accept'); // non-first fragment: no ports to test
    a.stmt(LDX_B_MSH, l3); // X = IHL * 4
    a.stmt(LD_H_IND, l3 + 2);
    a.jump(JEQ_K, port, 'accept', opts.bothDirections ? 0 : 'reject');
    if (opts.bothDirections) {
      a.stmt(LD_H_IND, l3);
      a.jump(JEQ_K, port, 'accept', 'reject');
    }
  }

  for (const l3 of [14, 18, 22]) {
    a.label(`ip6_${l3}`);
    a.stmt(LD_B_ABS, l3 + 6);
    a.jump(JEQ_K, IPPROTO_TCP, 0, `ip6ext_${l3}`);
    a.stmt(LD_H_ABS, l3 + 40 + 2);
    a.jump(JEQ_K, port, 'accept', opts.bothDirections ? 0 : 'reject');
    if (opts.bothDirections) {
      a.stmt(LD_H_ABS, l3 + 40);
      a.jump(JEQ_K, port, 'accept', 'reject');
    }
    a.label(`ip6ext_${l3}`);
    IPV6_EXT_HEADERS.forEach((nh, i) => a.jump(JEQ_K, nh, 'accept', i === IPV6_EXT_HEADERS.length - 1 ? 'reject' : 0));
  }

  a.label('reject');
  a.stmt(RET_K, 0);
  a.label('accept');
  a.stmt(RET_K, SNAP_LEN);
  return a.assemble();
}

const IPPROTO_UDP = 17;

/**
 * Keeps UDP datagrams to `port` (VXLAN: 4789) over IPv4 or IPv6, untagged, whole; rejects
 * the rest, including IPv4 fragments after the first (they carry no UDP header). Used by
 * `mirror-replay doctor` to sample what arrives on the underlying device.
 */
export function buildUdpPortFilter(port: number): Buffer {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CaptureError(`UDP port must be an integer in 1..65535, got ${String(port)}`);
  }
  const a = new Assembler();
  a.stmt(LD_H_ABS, 12);
  a.jump(JEQ_K, ETH_IPV4, 'ip4');
  a.jump(JEQ_K, ETH_IPV6, 'ip6', 'reject');

  a.label('ip4');
  a.stmt(LD_B_ABS, 14 + 9);
  a.jump(JEQ_K, IPPROTO_UDP, 0, 'reject');
  a.stmt(LD_H_ABS, 14 + 6);
  a.jump(JSET_K, 0x1fff, 'reject');
  a.stmt(LDX_B_MSH, 14);
  a.stmt(LD_H_IND, 14 + 2);
  a.jump(JEQ_K, port, 'accept', 'reject');

  a.label('ip6');
  a.stmt(LD_B_ABS, 14 + 6);
  a.jump(JEQ_K, IPPROTO_UDP, 0, 'reject');
  a.stmt(LD_H_ABS, 14 + 40 + 2);
  a.jump(JEQ_K, port, 'accept', 'reject');

  a.label('reject');
  a.stmt(RET_K, 0);
  a.label('accept');
  a.stmt(RET_K, SNAP_LEN);
  return a.assemble();
}

/** The tunnels user-space decapsulation reads: VXLAN and GENEVE (decode/tunnel.ts). */
export const TUNNEL_PORTS: readonly number[] = [4789, 6081];

/**
 * For --encap-interface: keeps UDP datagrams to any of `ports` over IPv4 or IPv6 (untagged, as an
 * ENI delivers them), whole. Unlike buildUdpPortFilter it also keeps IPv4 fragments after the
 * first (UDP, no ports to test) and IPv6 packets whose first next header is a fragment header, so
 * that a fragmented tunnel datagram reaches decode whole or is counted there, never half-held.
 */
export function buildTunnelFilter(ports: readonly number[] = TUNNEL_PORTS): Buffer {
  if (ports.length === 0 || ports.length > 8 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new CaptureError(`tunnel ports must be 1 to 8 integers in 1..65535, got ${JSON.stringify(ports)}`);
  }
  const a = new Assembler();
  const portTest = (): void => ports.forEach((p, i) => a.jump(JEQ_K, p, 'accept', i === ports.length - 1 ? 'reject' : 0));
  a.stmt(LD_H_ABS, 12);
  a.jump(JEQ_K, ETH_IPV4, 'ip4');
  a.jump(JEQ_K, ETH_IPV6, 'ip6', 'reject');

  a.label('ip4');
  a.stmt(LD_B_ABS, 14 + 9);
  a.jump(JEQ_K, IPPROTO_UDP, 0, 'reject');
  a.stmt(LD_H_ABS, 14 + 6);
  a.jump(JSET_K, 0x1fff, 'accept'); // non-first fragment: decode puts the datagram together
  a.stmt(LDX_B_MSH, 14);
  a.stmt(LD_H_IND, 14 + 2);
  portTest();

  a.label('ip6');
  a.stmt(LD_B_ABS, 14 + 6);
  a.jump(JEQ_K, 44, 'accept'); // fragment header
  a.jump(JEQ_K, IPPROTO_UDP, 0, 'reject');
  a.stmt(LD_H_ABS, 14 + 40 + 2);
  portTest();

  a.label('reject');
  a.stmt(RET_K, 0);
  a.label('accept');
  a.stmt(RET_K, SNAP_LEN);
  return a.assemble();
}
