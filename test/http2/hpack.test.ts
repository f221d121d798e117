/**
 * The HPACK decoder against RFC 7541 Appendix C (C.2 single fields; C.3/C.4 requests without and
 * with Huffman coding; C.5/C.6 responses with a 256-byte table, so entries are evicted), and
 * its errors. Real encoders' blocks are checked in h2-clients.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HpackDecoder, type DecodedBlock } from '../../src/http2/hpack.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const LIMIT = 64 * 1024;

function decodeAll(d: HpackDecoder, blocks: string[]): string[][] {
  return blocks.map((b) => {
    const buf = hex(b);
    const r = d.decode(buf, 0, buf.length, LIMIT);
    assert.notEqual(typeof r, 'string', `decode failed: ${String(r)}`);
    return (r as DecodedBlock).fields;
  });
}

const REQ1 = [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'];
const REQ2 = [...REQ1, 'cache-control', 'no-cache'];
const REQ3 = [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'];
const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const RES1 = [':status', '302', 'cache-control', 'private', 'date', DATE1, 'location', 'https://www.example.com'];
const RES2 = [':status', '307', 'cache-control', 'private', 'date', DATE1, 'location', 'https://www.example.com'];
const RES3 = [':status', '200', 'cache-control', 'private', 'date', 'Mon, 21 Oct 2013 20:13:22 GMT', 'location', 'https://www.example.com',
  'content-encoding', 'gzip', 'set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'];

test('C.2: literal with indexing, without indexing, never indexed, indexed', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, ['400a637573746f6d2d6b65790d637573746f6d2d686561646572']), [['custom-key', 'custom-header']]);
  assert.equal(d.tableSize, 55);
  const d2 = new HpackDecoder();
  assert.deepEqual(decodeAll(d2, ['040c2f73616d706c652f70617468', '100870617373776f726406736563726574', '82']),
    [[':path', '/sample/path'], ['password', 'secret'], [':method', 'GET']]);
  assert.equal(d2.tableSize, 0);
});

test('C.3: requests without Huffman coding share one dynamic table', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, [
    '828684410f7777772e6578616d706c652e636f6d',
    '828684be58086e6f2d6361636865',
    '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
  ]), [REQ1, REQ2, REQ3]);
  assert.equal(d.tableSize, 164);
  assert.equal(d.tableEntries, 3);
});

test('C.4: the same requests with Huffman coding', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, [
    '828684418cf1e3c2e5f23a6ba0ab90f4ff',
    '828684be5886a8eb10649cbf',
    '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
  ]), [REQ1, REQ2, REQ3]);
  assert.equal(d.tableSize, 164);
});

test('C.5: responses without Huffman, 256-byte table: entries are evicted', () => {
  const d = new HpackDecoder({ initialTableSize: 256 });
  assert.deepEqual(decodeAll(d, [
    '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d',
    '4803333037c1c0bf',
    '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31',
  ]), [RES1, RES2, RES3]);
  assert.equal(d.tableSize, 215);
  assert.equal(d.tableEntries, 3);
});

test('C.6: responses with Huffman, 256-byte table', () => {
  const d = new HpackDecoder({ initialTableSize: 256 });
  assert.deepEqual(decodeAll(d, [
    '488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3',
    '4883640effc1c0bf',
    '88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007',
  ]), [RES1, RES2, RES3]);
  assert.equal(d.tableSize, 215);
});

test('dynamic table size update: evicts, must open the block, may not pass the bound', () => {
  const d = new HpackDecoder();
  decodeAll(d, ['400a637573746f6d2d6b65790d637573746f6d2d686561646572']);
  assert.deepEqual(decodeAll(d, ['20']), [[]], 'size 0 empties the table');
  assert.equal(d.tableEntries, 0);
  assert.equal(d.decode(hex('be'), 0, 1, LIMIT), 'hpack_index', 'the evicted entry is gone');
  const late = new HpackDecoder();
  assert.equal(late.decode(hex('8220'), 0, 2, LIMIT), 'hpack_size_update_position');
  const big = new HpackDecoder({ maxTableSize: 4096 });
  // size update to 4097: 0x3f then 4097-31 = 4066 = 0xe2 0x1f
  assert.equal(big.decode(hex('3fe21f'), 0, 3, LIMIT), 'hpack_table_size');
});

test('errors: a bad index, a truncated string, bad Huffman padding, EOS; the decoder stays failed', () => {
  const cases: Array<[string, string]> = [
    ['80', 'hpack_index'],
    ['be', 'hpack_index'],
    ['410f7777', 'hpack_truncated'],
    ['418100', 'hpack_huffman'], // padding of zeros
    ['4184ffffffff', 'hpack_huffman'], // EOS (30 ones)
    ['3fffffffffff', 'hpack_integer'],
  ];
  for (const [block, err] of cases) {
    const d = new HpackDecoder();
    const b = hex(block);
    assert.equal(d.decode(b, 0, b.length, LIMIT), err, `${block}: ${JSON.stringify(d.decode(b, 0, b.length, LIMIT))}`);
    assert.equal(d.decode(hex('82'), 0, 1, LIMIT), 'hpack_failed_before');
  }
});

test('a block over the limit is decoded to its end (the table stays in step) but its fields are not kept', () => {
  const d = new HpackDecoder();
  const b = hex('828684410f7777772e6578616d706c652e636f6d');
  const r = d.decode(b, 0, b.length, 100) as DecodedBlock;
  assert.equal(r.overLimit, true);
  assert.deepEqual(r.fields, []);
  assert.equal(d.tableEntries, 1, 'the :authority insertion still happened');
  assert.deepEqual(decodeAll(d, ['828684be58086e6f2d6361636865']), [REQ2]);
});
