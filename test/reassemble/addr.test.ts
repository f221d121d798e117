import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { Packet } from '../../src/decode/packet.js';
import { formatAddress } from '../../src/reassemble/addr.js';

function v6(groups: number[]): Packet {
  const p = new Packet();
  p.ipVersion = 6;
  for (let i = 0; i < 4; i++) p.src[i] = ((groups[2 * i] << 16) | groups[2 * i + 1]) >>> 0;
  return p;
}

/** What Node's own stack (libuv's inet_ntop) prints for the same address. */
function nodeText(groups: number[]): string {
  return new net.SocketAddress({ address: groups.map((g) => g.toString(16)).join(':'), family: 'ipv6' }).address;
}

test('RFC 5952 examples and IPv4-mapped addresses in mixed notation', () => {
  const cases: Array<[number[], string]> = [
    [[0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], '2001:db8::1:0:0:1'],
    [[0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], '2001:db8:0:1:1:1:1:1'],
    [[0, 0, 0, 0, 0, 0, 0, 0], '::'],
    [[0, 0, 0, 0, 0, 0, 0, 1], '::1'],
    [[0, 0, 0, 0, 0, 0xffff, 0x506, 0x708], '::ffff:5.6.7.8'],
    [[0, 0, 0, 0, 0, 0, 0x506, 0x708], '::5.6.7.8'],
    [[0, 0, 0, 0, 0xffff, 0, 0x506, 0x708], '::ffff:0:506:708'],
  ];
  for (const [g, text] of cases) assert.equal(formatAddress(v6(g), true), text);
  const p4 = new Packet();
  p4.ipVersion = 4;
  p4.dst[0] = 0x0a000125;
  assert.equal(formatAddress(p4, false), '10.0.1.37');
});

test('any IPv6 address is written as Node (inet_ntop) writes it', () => {
  const group = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(0xffff) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xffff }) });
  fc.assert(
    fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (g) => {
      assert.equal(formatAddress(v6(g), true), nodeText(g));
    }),
    { numRuns: 2000 },
  );
});

test('a real IPv4 client of a dual-stack server: remoteAddress matches', async () => {
  const server = net.createServer();
  await new Promise<void>((res) => server.listen(0, '::', res));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const seen = new Promise<string>((res) => server.once('connection', (s) => { res(s.remoteAddress!); s.destroy(); }));
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => {});
    const remote = await seen;
    c.destroy();
    assert.equal(remote, '::ffff:127.0.0.1');
    assert.equal(formatAddress(v6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001]), true), remote);
  } finally {
    server.close();
  }
});
