import type { RequestOptions, Transport } from '../core.js';
import { AutoPager, type ListParams } from '../list.js';
import type { Customer, CustomerCreateParams, CustomerUpdateParams, Grant, GrantCreateParams, LedgerEntry } from '../types.js';

export const seg = (id: string): string => encodeURIComponent(id);

/** `/v1/customers`: the app's users, by the app's own ids. */
export class Customers {
  constructor(private readonly t: Transport) {}

  /** Creates the customer (signup bonus included), or returns the existing one unchanged. */
  create(params: CustomerCreateParams, options?: RequestOptions): Promise<Customer> {
    return this.t.post('/v1/customers', params, options);
  }

  /** The customer with `balance`, `available`, `held` (decimal strings). */
  retrieve(id: string, options?: RequestOptions): Promise<Customer> {
    return this.t.get(`/v1/customers/${seg(id)}`, undefined, options);
  }

  /** Changes `email`, `metadata` (replaced) or `low_balance_threshold` (null: the default). */
  update(id: string, params: CustomerUpdateParams, options?: RequestOptions): Promise<Customer> {
    return this.t.post(`/v1/customers/${seg(id)}`, params, options);
  }
}

/** `/v1/customers/{id}/grants`: lots of credits. */
export class Grants {
  constructor(private readonly t: Transport) {}

  create(customer: string, params: GrantCreateParams, options?: RequestOptions): Promise<Grant> {
    return this.t.post(`/v1/customers/${seg(customer)}/grants`, params, options);
  }

  /** Newest first, paging itself when iterated. */
  list(customer: string, params: ListParams = {}, options?: RequestOptions): AutoPager<Grant> {
    return new AutoPager(this.t, `/v1/customers/${seg(customer)}/grants`, { ...params }, options);
  }
}

/** `/v1/customers/{id}/ledger`: every balance change, immutable. */
export class Ledger {
  constructor(private readonly t: Transport) {}

  list(customer: string, params: ListParams = {}, options?: RequestOptions): AutoPager<LedgerEntry> {
    return new AutoPager(this.t, `/v1/customers/${seg(customer)}/ledger`, { ...params }, options);
  }
}
