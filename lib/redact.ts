// Credentials out of everything logged or printed: a URL's password (http://user:pass@host) and
// query parameters that carry secrets (?token=, &password=, InfluxDB 1.x's &p=). Done on the
// string, not through `new URL()`, so the rest of the URL reads exactly as configured (no added
// slash, no re-encoding) and an unparsable value is still redacted.

const MASK = '***';

/** Query parameter names whose values are secrets (compared lower-case, `-` read as `_`). */
const SECRET_PARAMS = new Set([
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'auth',
  'authorization',
  'password',
  'passwd',
  'pass',
  'pwd',
  'p', // InfluxDB 1.x: ?u=user&p=password
  'secret',
  'client_secret',
  'api_key',
  'apikey',
  'key',
  'sig',
  'signature',
  'credential',
  'credentials',
  'x_amz_signature',
  'x_amz_credential',
  'x_amz_security_token',
]);

/**
 * The URL with its credentials masked: `user:pass@` -> `user:***@`, a lone `token@` -> `***@`,
 * and secret query parameters' values -> `***`. Anything else is returned unchanged.
 */
export function redactUrl(url: string): string {
  let out = url;
  // userinfo: after "scheme://" (or "//"), before the first "@" that precedes any "/", "?" or "#".
  out = out.replace(/^((?:[a-z][a-z0-9+.-]*:)?\/\/)([^/?#@\s]*)@/i, (_m, scheme: string, info: string) => {
    const colon = info.indexOf(':');
    return colon >= 0 ? `${scheme}${info.slice(0, colon)}:${MASK}@` : `${scheme}${MASK}@`;
  });
  const q = out.indexOf('?');
  if (q < 0) return out;
  const hash = out.indexOf('#', q);
  const query = out.slice(q + 1, hash < 0 ? undefined : hash);
  const redacted = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name);
      } catch {
        // a malformed escape: compare the raw name
      }
      return SECRET_PARAMS.has(name.toLowerCase().replace(/-/g, '_')) ? `${pair.slice(0, eq)}=${MASK}` : pair;
    })
    .join('&');
  return `${out.slice(0, q + 1)}${redacted}${hash < 0 ? '' : out.slice(hash)}`;
}

/** Every URL inside a text (an error message, a log line) redacted; the rest unchanged. */
export function redactUrls(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi, (m) => {
    // Sentence punctuation right after a URL is not part of it ("at http://h:8086.").
    const end = /[.,;:)\]]+$/.exec(m)?.[0] ?? '';
    return redactUrl(m.slice(0, m.length - end.length)) + end;
  });
}

/**
 * A deep copy of a configuration (or any JSON-like value) for printing: every string holding a
 * URL redacted, and the values of keys named like secrets (password, token, secret) masked.
 */
export function redactConfig<T>(value: T): T {
  return walk(value, '') as T;
}

/** Keys whose string values are secrets whatever they hold (`password`, `saslPassword`, `token`...). */
const SECRET_KEY = /(password|passwd|token|secret|api_?key|credentials?)$/i;

function walk(v: unknown, key: string): unknown {
  if (typeof v === 'string') {
    if (v && SECRET_KEY.test(key)) return MASK;
    return v.includes('://') ? redactUrls(v) : v;
  }
  if (Array.isArray(v)) return v.map((x) => walk(x, key));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x, k);
    return out;
  }
  return v;
}
