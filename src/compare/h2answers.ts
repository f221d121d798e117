/**
 * Production's HTTP/2 answers as shadow testing wants them: src/http2's H2AnswerReader gives
 * heads, body pieces, trailers and losses per stream; this digests each stream's answer as it
 * streams (BodyDigest, the same as HTTP/1.x answers and the destinations' get, so equal bytes give
 * equal digests) and names losses with the comparison's reasons.
 */
import { BodyDigest, type ResponseDigest } from '../http/response.js';
import { DEFAULT_HTTP_LIMITS, type HttpDropReason } from '../http/types.js';
import { H2AnswerReader } from '../http2/answers.js';
import type { AnswerLossReason, H2AnswerEvents, H2AnswerReaderFactory } from './production.js';

/** What a stream's answer was lost to, in mirror_replay_responses_lost_total's words; null: not counted. */
export function answerLossReason(r: HttpDropReason): AnswerLossReason | null {
  switch (r) {
    case 'http2_stream_reset': return 'stream_reset';
    case 'http2_incomplete': return 'incomplete';
    case 'http_headers_too_large': return 'head_too_large';
    case 'stream_overlap_conflict': return 'overlap_conflict';
    case 'stream_gap': case 'stream_gap_kernel_drop': case 'stream_truncated': case 'stream_flow_cap': case 'stream_memcap': return 'gap';
    // A connection picked up after its start: the request side counts it; the pairing says midstream.
    case 'http2_midstream': return null;
    default: return 'http2_error';
  }
}

interface StreamAnswer {
  status: number;
  headers: string[];
  body: BodyDigest;
}

/** The reader for one connection's server-to-client bytes, reporting whole digests per stream. */
export const h2AnswerReader: H2AnswerReaderFactory = (events: H2AnswerEvents, opts) => {
  const open = new Map<number, StreamAnswer>();
  const lose = (id: number | null, r: HttpDropReason) => {
    const reason = answerLossReason(r);
    if (id === null) {
      open.clear();
      events.connectionLost(reason ?? 'http2_error', reason === null);
      return;
    }
    open.delete(id);
    events.streamLost(id, reason ?? 'http2_error');
  };
  return new H2AnswerReader(
    {
      onHead: (id, status, fields) => void open.set(id, { status, headers: fields, body: new BodyDigest(opts.snippetBytes, opts.captureJsonBytes, fields) }),
      onBody: (id, b, start, end) => {
        if (end > start) open.get(id)?.body.update(b.subarray(start, end));
      },
      onEnd: (id, trailers) => {
        const a = open.get(id);
        if (!a) return;
        open.delete(id);
        const d: ResponseDigest = a.body.finish(a.status, 1, a.headers);
        if (trailers.length) d.trailers = trailers;
        events.answer(id, d);
      },
      onLost: lose,
    },
    { maxHeaderBytes: DEFAULT_HTTP_LIMITS.maxHeaderBytes },
    // After an h2c upgrade, production.ts hands over the bytes that follow the 101 head.
    { afterUpgrade: false },
  );
};
