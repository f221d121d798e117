import { ConfigError } from '../errors.js';

/** Route label for paths that match no configured template. */
export const OTHER_ROUTE = 'other';

/**
 * Compiles --compare-route templates ('/api/users/:id', '/static/*') into one matcher from a
 * request target to the first matching template, or 'other'. Only configured templates become
 * label values, so the per-route metrics stay bounded whatever the traffic.
 */
export function compileRoutes(templates: string[]): (target: string) => string {
  if (templates.length === 0) return () => OTHER_ROUTE;
  const compiled = templates.map((t) => ({ t, re: templateRegex(t) }));
  return (target) => {
    const path = pathOf(target);
    for (const c of compiled) if (c.re.test(path)) return c.t;
    return OTHER_ROUTE;
  };
}

function templateRegex(t: string): RegExp {
  if (!t.startsWith('/')) throw new ConfigError(`--compare-route ${JSON.stringify(t)} must start with /, e.g. /api/users/:id`);
  if (t === OTHER_ROUTE) throw new ConfigError(`--compare-route ${JSON.stringify(t)} is reserved`);
  const segs = t.split('/').slice(1);
  const parts = segs.map((s, i) => {
    if (s === '*') {
      if (i !== segs.length - 1) throw new ConfigError(`--compare-route ${JSON.stringify(t)}: * only as the last segment`);
      return '.*';
    }
    if (/^:[A-Za-z_][A-Za-z0-9_]*$/.test(s)) return '[^/]+';
    if (s.includes(':') || s.includes('*')) throw new ConfigError(`--compare-route ${JSON.stringify(t)}: a segment is a literal, :name or a final *`);
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^/${parts.join('/')}$`);
}

/** The path of a request target, without query or fragment. */
export function pathOf(target: string): string {
  let end = target.length;
  const q = target.indexOf('?');
  if (q >= 0) end = q;
  const h = target.indexOf('#');
  if (h >= 0 && h < end) end = h;
  return target.slice(0, end);
}
