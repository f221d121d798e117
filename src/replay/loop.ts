import { ConfigError } from '../errors.js';
import { isFieldValue, isToken } from '../http/grammar.js';
import type { HttpRequest } from '../http/types.js';
import type { RequestFlow } from './flow.js';

export interface Marker {
  name: string;
  lower: string;
  value: string;
}

/** --mark-header 'Name' or 'Name: value' (value defaults to "1"). */
export function parseMarker(s: string | undefined): Marker | null {
  if (!s) return null;
  const i = s.indexOf(':');
  const name = (i > 0 ? s.slice(0, i) : s).trim();
  const value = i > 0 ? s.slice(i + 1).trim() : '1';
  if (!isToken(name) || !isFieldValue(value)) throw new ConfigError(`--mark-header ${JSON.stringify(s)} must be 'Name' or 'Name: value'`);
  return { name, lower: name.toLowerCase(), value };
}

/**
 * A replay that reaches the mirrored service would be mirrored again, forever. Two guards:
 * captured requests that carry our marker header, and flows whose server is one of our
 * destinations (address and port), are dropped with reason `loop`.
 */
export function loopGuard(marker: Marker | null, destinations: Array<{ addresses: string[]; port: number }>, onLoop: (flow: RequestFlow) => void): (req: HttpRequest, flow: RequestFlow) => boolean {
  const targets = new Set(destinations.flatMap((d) => d.addresses.map((a) => `${a}|${d.port}`)));
  return (req, flow) => {
    if (targets.size && targets.has(`${flow.serverAddr}|${flow.serverPort}`)) {
      onLoop(flow);
      return true;
    }
    if (marker) {
      const h = req.headers;
      for (let i = 0; i < h.length; i += 2) if (h[i].length === marker.lower.length && h[i].toLowerCase() === marker.lower) return true;
    }
    return false;
  };
}
