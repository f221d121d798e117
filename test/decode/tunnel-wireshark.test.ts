/**
 * Our decapsulation against Wireshark's: test/fixtures/encap.pcap (tunnels as an adapter's
 * interface receives them) and tshark's reading of it, encap.tshark.tsv (fixtures README). Per
 * frame: the innermost VNI, the GENEVE protocol type and option layout (GWLB's class 0x0108
 * options found where Wireshark finds them), and the inner TCP ports and payload length.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PcapFileSource } from '../../src/capture/pcap.js';
import { DecodeCounters } from '../../src/decode/anomalies.js';
import { Decoder } from '../../src/decode/decoder.js';
import { decodeGeneve, GeneveHeader } from '../../src/decode/geneve.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');
const PCAP = path.join(FIXTURES, 'encap.pcap');
const TSV = path.join(FIXTURES, 'encap.tshark.tsv');
const FIELDS = ['frame.number', 'vxlan.vni', 'geneve.vni', 'geneve.proto_type', 'geneve.option.class', 'geneve.option.type', 'geneve.option.length', 'tcp.srcport', 'tcp.dstport', 'tcp.len'];
/** Ethernet + IPv4 (no options) + UDP: where the outer GENEVE header starts in these frames. */
const OUTER_GENEVE = 42;

async function frames(): Promise<Buffer[]> {
  const out: Buffer[] = [];
  await new PcapFileSource(PCAP).run((buf, off, capLen) => out.push(Buffer.from(buf.subarray(off, off + capLen))));
  return out;
}

const rows = (tsv: string) => tsv.trim().split('\n').map((l) => Object.fromEntries(l.split('\t').map((v, i) => [FIELDS[i], v ? v.split(',') : []])));

test('each frame decodes as Wireshark reads it: VNI, GENEVE options, inner TCP', async () => {
  const all = await frames();
  const want = rows(fs.readFileSync(TSV, 'utf8'));
  assert.equal(all.length, want.length);
  all.forEach((f, i) => {
    const w = want[i];
    const d = new Decoder(80, {}, { vnis: [] });
    const p = d.decode(f, 0, f.length, f.length);
    assert.ok(p, `frame ${i + 1}`);
    const vni = w['vxlan.vni'].length ? Number(w['vxlan.vni'].at(-1)) : Number(w['geneve.vni'].at(-1));
    assert.equal(p.vni, vni, `frame ${i + 1}: innermost VNI`);
    assert.equal(p.srcPort, Number(w['tcp.srcport'][0]));
    assert.equal(p.dstPort, Number(w['tcp.dstport'][0]));
    assert.equal(p.payloadLength, Number(w['tcp.len'][0]), `frame ${i + 1}: payload`);
    if (!w['geneve.vni'].length) return;
    const h = new GeneveHeader();
    assert.ok(decodeGeneve(f, OUTER_GENEVE, f.length, h, new DecodeCounters()));
    assert.equal(h.protocol, Number(w['geneve.proto_type'][0]));
    // Wireshark: the options' total, then each option's length with its 4-byte header.
    const [total, ...each] = w['geneve.option.length'].map(Number);
    assert.equal(h.payloadOffset - OUTER_GENEVE - 8, total, `frame ${i + 1}: option bytes`);
    const gwlb = w['geneve.option.class'].map((c, k) => [Number(c), Number(w['geneve.option.type'][k]), each[k]]).filter(([c]) => c === 0x0108);
    assert.equal(h.gwlbEndpoint >= 0, gwlb.some(([, t, l]) => t === 1 && l === 12), `frame ${i + 1}: endpoint id`);
    assert.equal(h.gwlbAttachment >= 0, gwlb.some(([, t, l]) => t === 2 && l === 12));
    assert.equal(h.gwlbCookie >= 0, gwlb.some(([, t, l]) => t === 3 && l === 8));
  });
});

const tshark = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
test('the committed reading is what tshark says today', { skip: tshark.status !== 0 ? 'tshark not installed' : false }, () => {
  const r = spawnSync('tshark', ['-r', PCAP, '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...FIELDS.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, fs.readFileSync(TSV, 'utf8'));
});
