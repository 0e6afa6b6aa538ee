// React bindings: a provider holding a customer-token client, hooks that read /v1/me…, and
// unstyled components with stable class names (`creditd-…`) and accessible markup.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';

import { compareCredits, toMicros } from '../decimal.js';
import { CreditdError } from '../error.js';
import { Creditd } from '../index.js';
import type { Customer, Payment, UsageSummary } from '../types.js';
import type { UsageQuery } from '../resources/me.js';

interface CreditdContextValue {
  client: Creditd;
  lowBalanceThreshold: string;
  refreshIntervalMs: number;
  /** Bumped by `refresh()`: every hook reloads. */
  version: number;
  refresh: () => void;
}

const CreditdContext = createContext<CreditdContextValue | null>(null);

export interface CreditdProviderProps {
  /** A customer token (JWT) the app's backend signed for the logged-in user. */
  token: string;
  /** Where the browser reaches creditd; creditd must list this page's origin in `cors_allowed_origins`. */
  baseUrl: string;
  /** `useCredits().low` is true at or below this many available credits; default "10". */
  lowBalanceThreshold?: string;
  /** How often hooks reload on their own; default 30 000, 0 for never. */
  refreshIntervalMs?: number;
  children?: ReactNode;
}

export function CreditdProvider({ token, baseUrl, lowBalanceThreshold = '10', refreshIntervalMs = 30_000, children }: CreditdProviderProps) {
  const client = useMemo(() => new Creditd({ apiKey: token, baseUrl }), [token, baseUrl]);
  const [version, setVersion] = useState(0);
  const refresh = useCallback(() => setVersion((v) => v + 1), []);
  const value = useMemo(
    () => ({ client, lowBalanceThreshold, refreshIntervalMs, version, refresh }),
    [client, lowBalanceThreshold, refreshIntervalMs, version, refresh],
  );
  return <CreditdContext.Provider value={value}>{children}</CreditdContext.Provider>;
}

function useCreditdContext(): CreditdContextValue {
  const context = useContext(CreditdContext);
  if (!context) throw new Error('creditd/react: wrap your components in <CreditdProvider>');
  return context;
}

/** The customer-token client of the nearest provider, for calls the hooks do not cover. */
export function useCreditd(): Creditd {
  return useCreditdContext().client;
}

export interface Loadable<T> {
  data: T | undefined;
  loading: boolean;
  error: CreditdError | undefined;
  /** Reloads this and every other creditd hook under the provider. */
  refresh: () => void;
}

/** Loads `load()` now, on `refresh()`, on the provider's interval and when the window regains focus. */
function useLoad<T>(load: (client: Creditd) => Promise<T>, deps: unknown[]): Loadable<T> {
  const { client, version, refresh, refreshIntervalMs } = useCreditdContext();
  const [state, setState] = useState<{ data?: T; error?: CreditdError; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load(client).then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => {
        const e = error instanceof CreditdError ? error : new CreditdError({ status: 0, code: 'client_error', message: String(error) });
        if (live) setState((s) => ({ ...s, error: e, loading: false }));
      },
    );
    return () => {
      live = false;
    };
    // `load` is a new closure each render; what it reads is in `deps`.
  }, [client, version, tick, ...deps]);
  useEffect(() => {
    const again = () => setTick((t) => t + 1);
    const timer = refreshIntervalMs > 0 ? setInterval(again, refreshIntervalMs) : undefined;
    globalThis.addEventListener?.('focus', again);
    return () => {
      if (timer) clearInterval(timer);
      globalThis.removeEventListener?.('focus', again);
    };
  }, [refreshIntervalMs]);
  return { data: state.data, loading: state.loading, error: state.error, refresh };
}

export interface Credits extends Loadable<Customer> {
  /** Decimal strings; undefined until loaded. */
  balance: string | undefined;
  available: string | undefined;
  held: string | undefined;
  /** Available credits are at or below the provider's `lowBalanceThreshold`. */
  low: boolean;
}

/** The token's customer: balance, available and held credits, and the low-balance flag. */
export function useCredits(): Credits {
  const { lowBalanceThreshold } = useCreditdContext();
  const loaded = useLoad((c) => c.me.retrieve(), []);
  const customer = loaded.data;
  return {
    ...loaded,
    balance: customer?.balance,
    available: customer?.available,
    held: customer?.held,
    low: customer !== undefined && compareCredits(customer.available, lowBalanceThreshold) <= 0,
  };
}

/** Credits spent per UTC day (or per feature) between `from` and `to` (unix seconds). */
export function useUsage(query: UsageQuery = {}): Loadable<UsageSummary> {
  return useLoad((c) => c.me.usage(query), [query.from, query.to, query.groupBy]);
}

/** The token's customer's most recent payments (one page, newest first). */
export function usePayments(limit = 10): Loadable<Payment[]> {
  return useLoad(async (c) => (await c.me.payments({ limit }).firstPage()).data, [limit]);
}

/** The available balance, e.g. `12.5 credits`, announced politely when it changes. */
export function CreditsBalance({ className = 'creditd-balance', unit = 'credits' }: { className?: string; unit?: string }) {
  const { available, loading, error } = useCredits();
  return (
    <span className={className} role="status" aria-live="polite" aria-busy={loading && available === undefined}>
      {error && available === undefined ? (
        <span className={`${className}-error`}>Balance unavailable</span>
      ) : available === undefined ? (
        '…'
      ) : (
        <>
          <span className={`${className}-amount`}>{available}</span> {unit}
        </>
      )}
    </span>
  );
}

/** Shown only while credits are low: an alert with a slot for a call to action. */
export function LowCreditsWarning({ className = 'creditd-low-credits', children }: { className?: string; children?: ReactNode }) {
  const { low, available } = useCredits();
  if (!low) return null;
  return (
    <div className={className} role="alert">
      {children ?? <>You have {available} credits left.</>}
    </div>
  );
}

export interface BuyCreditsProps {
  /** The package to buy (`pkg_…`). */
  package: string;
  quantity?: number;
  /** The button's text; default "Buy credits". */
  children?: ReactNode;
  className?: string;
  /** Called with the Checkout URL; default: the browser goes there. */
  onCheckout?: (url: string) => void;
}

/** A button that starts Stripe Checkout through `/v1/me/checkout-sessions`. */
export function BuyCredits({ package: pkg, quantity, children, className = 'creditd-buy', onCheckout }: BuyCreditsProps) {
  const client = useCreditd();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const buy = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const session = await client.me.createCheckoutSession(quantity === undefined ? { package: pkg } : { package: pkg, quantity });
      if (!session.url) throw new Error('creditd returned no Checkout URL');
      if (onCheckout) onCheckout(session.url);
      else globalThis.location.assign(session.url);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className={className}>
      <button type="button" className={`${className}-button`} onClick={buy} disabled={busy} aria-busy={busy}>
        {children ?? 'Buy credits'}
      </button>
      {error && (
        <span className={`${className}-error`} role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

export interface UsageChartProps extends UsageQuery {
  className?: string;
  /** The chart's size in CSS pixels; default 480 × 160. */
  width?: number;
  height?: number;
}

/** Bars of credits spent per day (SVG), with the same figures in a table for screen readers. */
export function UsageChart({ className = 'creditd-usage-chart', width = 480, height = 160, ...query }: UsageChartProps) {
  const { data, loading, error } = useUsage({ ...query, groupBy: query.groupBy ?? 'day' });
  if (error && !data) return <p className={`${className}-error`}>Usage unavailable</p>;
  if (!data) return <p className={`${className}-loading`} aria-busy={loading}>Loading usage…</p>;
  const label = (row: UsageSummary['data'][number]) => row.day ?? row.feature ?? 'other';
  // Bar heights are only a picture: proportions of micro-credits, exact figures in the table.
  const micros = data.data.map((row) => Number(toMicros(row.credits)));
  const max = Math.max(...micros, 0);
  const bar = data.data.length ? width / data.data.length : width;
  return (
    <figure className={className}>
      <svg role="img" aria-label={`Credits used: ${data.total} in total`} width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
        {data.data.map((row, i) => {
          const h = max > 0 ? Math.max(1, ((micros[i] ?? 0) / max) * (height - 4)) : 0;
          return (
            <rect key={label(row)} className={`${className}-bar`} x={i * bar + 2} y={height - h} width={Math.max(1, bar - 4)} height={h} fill="currentColor">
              <title>{`${label(row)}: ${row.credits} credits`}</title>
            </rect>
          );
        })}
      </svg>
      <figcaption className={`${className}-caption`}>{data.total} credits used</figcaption>
      <table className={`${className}-table`}>
        <thead>
          <tr>
            <th scope="col">{data.group_by === 'feature' ? 'Feature' : 'Day'}</th>
            <th scope="col">Credits</th>
            <th scope="col">Requests</th>
          </tr>
        </thead>
        <tbody>
          {data.data.map((row) => (
            <tr key={label(row)}>
              <td>{label(row)}</td>
              <td>{row.credits}</td>
              <td>{row.requests}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
