import { CreditdError } from './error.js';

/** How the client reaches creditd. */
export interface ClientOptions {
  /** A secret key (`cd_sk_…`) on the app's backend, or a customer token (JWT) in the browser. */
  apiKey: string;
  /** Where creditd listens, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Per attempt; default 30 000. */
  timeoutMs?: number;
  /** Retries after the first attempt for network errors, timeouts, 429 and 503; default 2. */
  maxRetries?: number;
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Sent as `Idempotency-Key`; a POST without one gets a random key, reused by its retries. */
  idempotencyKey?: string;
  /** Overrides the client's timeout for this request. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

type Query = Record<string, string | number | undefined>;

/** A random idempotency key (crypto.randomUUID where the runtime has it). */
export function randomKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Seconds of a `Retry-After` header (delta-seconds or an HTTP date), in ms; undefined without one. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

interface ErrorEnvelope {
  error?: { code?: unknown; message?: unknown; param?: unknown; balance?: unknown; available?: unknown };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

async function errorFrom(response: Response, idempotencyKey: string | undefined): Promise<CreditdError> {
  const text = await response.text();
  let detail: ErrorEnvelope['error'];
  try {
    detail = (JSON.parse(text) as ErrorEnvelope).error;
  } catch {
    detail = undefined;
  }
  return new CreditdError({
    status: response.status,
    code: str(detail?.code) ?? 'http_error',
    message: str(detail?.message) ?? `creditd answered ${response.status}: ${text.slice(0, 200)}`,
    param: str(detail?.param),
    balance: str(detail?.balance),
    available: str(detail?.available),
    idempotencyKey,
  });
}

/** Whether a failed attempt may be sent again with the same idempotency key. */
function retryable(error: CreditdError): boolean {
  return (
    error.status === 0 ||
    error.status === 429 ||
    error.status === 503 ||
    (error.status === 409 && error.code === 'idempotency_key_in_use')
  );
}

/** The transport every resource uses: JSON in and out, auth, timeouts, retries, idempotency. */
export class Transport {
  readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions) {
    if (!options.apiKey) throw new TypeError('creditd: apiKey is required');
    if (!/^https?:\/\//.test(options.baseUrl)) throw new TypeError('creditd: baseUrl must be an http(s) URL');
    this.apiKey = options.apiKey;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxRetries = options.maxRetries ?? 2;
    if (!options.fetch && typeof globalThis.fetch !== 'function') throw new TypeError('creditd: no global fetch; pass options.fetch');
    // Browsers require fetch to be called on the global object ("Illegal invocation" otherwise).
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  get<T>(path: string, query?: Query, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, undefined, query, options);
  }

  post<T>(path: string, body?: object, options?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, body ?? {}, undefined, options);
  }

  async request<T>(method: string, path: string, body: object | undefined, query?: Query, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const key = method === 'POST' ? (options.idempotencyKey ?? randomKey()) : undefined;
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (key) headers['idempotency-key'] = key;
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.attempt(url, init, key, options);
      if (!(outcome instanceof CreditdError)) return outcome.json() as Promise<T>;
      if (attempt >= this.maxRetries || !retryable(outcome) || options.signal?.aborted) throw outcome;
      const backoff = Math.min(8_000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(Math.max(backoff, outcome.retryAfterMs ?? 0));
    }
  }

  /** One attempt: the response when it is a success, else the error (with Retry-After in ms). */
  private async attempt(
    url: URL,
    init: { method: string; headers: Record<string, string>; body: string | undefined },
    key: string | undefined,
    options: RequestOptions,
  ): Promise<Response | (CreditdError & { retryAfterMs?: number })> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs);
    const signal = options.signal ? anySignal([options.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await this.fetchImpl(url, { ...init, signal });
    } catch (cause) {
      if (options.signal?.aborted) throw cause;
      const timedOut = timeout.aborted;
      return new CreditdError({
        status: 0,
        code: timedOut ? 'timeout' : 'network_error',
        message: timedOut ? `no answer from creditd within the timeout (${url.pathname})` : `could not reach creditd: ${String(cause)}`,
        idempotencyKey: key,
        cause,
      });
    }
    if (response.ok) return response;
    const error: CreditdError & { retryAfterMs?: number } = await errorFrom(response, key);
    const wait = retryAfterMs(response.headers.get('retry-after'));
    if (wait !== undefined) error.retryAfterMs = wait;
    return error;
  }
}

/** Aborts when any of `signals` does (AbortSignal.any where available). */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) return any(signals);
  const controller = new AbortController();
  for (const s of signals) {
    if (s.aborted) controller.abort(s.reason);
    else s.addEventListener('abort', () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}
