import type { RequestOptions, Transport } from '../core.js';
import { AutoPager, type ListParams } from '../list.js';
import type { CheckoutSession, Customer, LedgerEntry, MeCheckoutSessionCreateParams, Payment, UsageSummary } from '../types.js';

export interface UsageQuery {
  /** Unix seconds, inclusive; default 30 days before `to`. */
  from?: number;
  /** Unix seconds, exclusive; default now. */
  to?: number;
  groupBy?: 'day' | 'feature';
}

/** `/v1/me…`: what a customer token may read and do (the browser side: `apiKey` is the token). */
export class Me {
  constructor(private readonly t: Transport) {}

  retrieve(options?: RequestOptions): Promise<Customer> {
    return this.t.get('/v1/me', undefined, options);
  }

  ledger(params: ListParams = {}, options?: RequestOptions): AutoPager<LedgerEntry> {
    return new AutoPager(this.t, '/v1/me/ledger', { ...params }, options);
  }

  payments(params: ListParams = {}, options?: RequestOptions): AutoPager<Payment> {
    return new AutoPager(this.t, '/v1/me/payments', { ...params }, options);
  }

  usage(query: UsageQuery = {}, options?: RequestOptions): Promise<UsageSummary> {
    return this.t.get('/v1/me/usage', { from: query.from, to: query.to, group_by: query.groupBy }, options);
  }

  /** Starts Checkout for a package; send the user to the returned `url`. */
  createCheckoutSession(params: MeCheckoutSessionCreateParams, options?: RequestOptions): Promise<CheckoutSession> {
    return this.t.post('/v1/me/checkout-sessions', params, options);
  }
}
