/**
 * Lab helper, run inside a namespace: what a Gateway Load Balancer target receives when a Traffic
 * Mirroring session targets a GWLB endpoint. Sends `--count` HTTP requests (each its own
 * connection from 10.99.0.1) as VXLAN datagrams of `--vni`, each wrapped whole (outer IPv4 and
 * UDP 4789 included) in GENEVE with GWLB's TLV options, to `--to HOST` UDP 6081. With
 * `--malformed`, sends instead one datagram per malformed VXLAN/GENEVE/UDP header (see BAD
 * below), each `--count` times. Prints "sent N" and exits.
 *   node geneve-inject.js --vni 3 --to 10.213.2.2 --server 10.213.1.2 --count 20 --prefix /gwlb3
 *   node geneve-inject.js --malformed --to 10.213.2.2 --server 10.213.1.2 --count 3
 */
import dgram from 'node:dgram';
import { genevePayload, ipv4Udp } from '../fixtures/geneve.js';
import { httpConnectionFrames, vxlanPayload } from '../fixtures/vxlan.js';

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

/** The mirror's VXLAN datagram as GWLB hands it on: an IPv4 packet from the mirror source to the endpoint. */
const mirrored = (payload: Buffer, udpLength?: number) => ipv4Udp({ src: '10.0.1.15', dst: '10.0.2.40', sport: 49200, dport: 4789, payload, udpLength });

const to = arg('to');
const server = arg('server');
const count = Math.min(1000, Number(arg('count', '10')));
const sock = dgram.createSocket('udp4');
const send = (payload: Buffer, port: number) => new Promise<void>((res, rej) => sock.send(payload, port, to, (e) => (e ? rej(e) : res())));
let sent = 0;

if (process.argv.includes('--malformed')) {
  const inner = httpConnectionFrames('10.99.0.1', 29999, server, '/malformed')[1];
  /** anomaly name → [UDP port, payload]; the lab test expects each anomaly `count` times. */
  const BAD: Record<string, [number, Buffer]> = {
    vxlan_bad_flags: [4789, Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 1, 0]), inner])],
    vxlan_truncated: [4789, Buffer.from([8, 0, 0, 0])],
    geneve_truncated: [6081, Buffer.from([0, 0, 8, 0, 0, 0])],
    geneve_bad_version: [6081, genevePayload({ inner: mirrored(vxlanPayload(3, inner)), version: 1 })],
    geneve_bad_option_length: [6081, genevePayload({ inner: mirrored(vxlanPayload(3, inner)), optLenWords: 63 })],
    geneve_bad_protocol: [6081, genevePayload({ inner: mirrored(vxlanPayload(3, inner)), protocol: 0x88cc })],
    udp_bad_length: [6081, genevePayload({ inner: mirrored(vxlanPayload(3, inner), 4000) })],
  };
  for (let i = 0; i < count; i++) for (const [port, payload] of Object.values(BAD)) {
    await send(payload, port);
    sent++;
  }
} else {
  const vni = Number(arg('vni'));
  const prefix = arg('prefix', `/gwlb${vni}`);
  for (let i = 0; i < count; i++) {
    for (const f of httpConnectionFrames('10.99.0.1', 30000 + i, server, `${prefix}/${i}`)) await send(genevePayload({ inner: mirrored(vxlanPayload(vni, f)) }), 6081);
    sent++;
    await new Promise((r) => setTimeout(r, 5));
  }
}
sock.close();
process.stdout.write(`sent ${sent}\n`);
