import type { RequestOptions, Transport } from '../core.js';
import { AutoPager, type ListParams } from '../list.js';
import type {
  AutoTopup,
  AutoTopupUpdateParams,
  Budget,
  BudgetCreateParams,
  Deleted,
  EntitlementList,
  Feature,
  FeatureCreateParams,
  FeatureUpdateParams,
  OutboundEvent,
  OutboundEventListParams,
  Redelivery,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointCreateParams,
  WebhookEndpointUpdateParams,
} from '../types.js';
import { seg } from './customers.js';

/** `/v1/webhook-endpoints`: where creditd POSTs its events (Standard Webhooks signed). */
export class WebhookEndpoints {
  constructor(private readonly t: Transport) {}

  /** The answer carries `secret` (`whsec_…`) in full, this once: keep it for `webhooks.verify`. */
  create(params: WebhookEndpointCreateParams, options?: RequestOptions): Promise<WebhookEndpoint> {
    return this.t.post('/v1/webhook-endpoints', params, options);
  }

  async list(options?: RequestOptions): Promise<WebhookEndpoint[]> {
    return (await this.t.get<{ data: WebhookEndpoint[] }>('/v1/webhook-endpoints', undefined, options)).data;
  }

  retrieve(id: string, options?: RequestOptions): Promise<WebhookEndpoint> {
    return this.t.get(`/v1/webhook-endpoints/${seg(id)}`, undefined, options);
  }

  update(id: string, params: WebhookEndpointUpdateParams, options?: RequestOptions): Promise<WebhookEndpoint> {
    return this.t.post(`/v1/webhook-endpoints/${seg(id)}`, params, options);
  }

  del(id: string, options?: RequestOptions): Promise<Deleted> {
    return this.t.request('DELETE', `/v1/webhook-endpoints/${seg(id)}`, undefined, undefined, options);
  }

  /** A new secret, returned in full; the previous one keeps signing for a while beside it. */
  rotateSecret(id: string, options?: RequestOptions): Promise<WebhookEndpoint> {
    return this.t.post(`/v1/webhook-endpoints/${seg(id)}/rotate-secret`, {}, options);
  }

  /** Delivery attempts to the endpoint, newest first, paging itself when iterated. */
  deliveries(id: string, params: ListParams = {}, options?: RequestOptions): AutoPager<WebhookDelivery> {
    return new AutoPager(this.t, `/v1/webhook-endpoints/${seg(id)}/deliveries`, { ...params }, options);
  }
}

/** `/v1/outbound-events`: the events creditd sent (or will send) to the webhook endpoints. */
export class OutboundEvents {
  constructor(private readonly t: Transport) {}

  /** Newest first (only `customer`'s when given), paging itself when iterated. */
  list(params: ListParams & OutboundEventListParams = {}, options?: RequestOptions): AutoPager<OutboundEvent> {
    return new AutoPager(this.t, '/v1/outbound-events', { ...params }, options);
  }

  /** Sends the event again now, with the same `webhook-id`, to every endpoint that wants it. */
  redeliver(id: string, options?: RequestOptions): Promise<Redelivery> {
    return this.t.post(`/v1/outbound-events/${seg(id)}/redeliver`, {}, options);
  }
}

/** `/v1/features`: what the app sells, optionally priced by units. */
export class Features {
  constructor(private readonly t: Transport) {}

  create(params: FeatureCreateParams, options?: RequestOptions): Promise<Feature> {
    return this.t.post('/v1/features', params, options);
  }

  async list(options?: RequestOptions): Promise<Feature[]> {
    return (await this.t.get<{ data: Feature[] }>('/v1/features', undefined, options)).data;
  }

  /** Renames or re-prices; past usage keeps the price it was charged at. */
  update(id: string, params: FeatureUpdateParams, options?: RequestOptions): Promise<Feature> {
    return this.t.post(`/v1/features/${seg(id)}`, params, options);
  }

  archive(id: string, options?: RequestOptions): Promise<Feature> {
    return this.t.post(`/v1/features/${seg(id)}/archive`, {}, options);
  }
}

/** `/v1/customers/{id}/budgets`: caps on what one key or team member may spend. */
export class Budgets {
  constructor(private readonly t: Transport) {}

  create(customer: string, params: BudgetCreateParams, options?: RequestOptions): Promise<Budget> {
    return this.t.post(`/v1/customers/${seg(customer)}/budgets`, params, options);
  }

  async list(customer: string, options?: RequestOptions): Promise<Budget[]> {
    return (await this.t.get<{ data: Budget[] }>(`/v1/customers/${seg(customer)}/budgets`, undefined, options)).data;
  }
}

/** `/v1/customers/{id}/entitlements`: every feature as it stands for the customer now. */
export class Entitlements {
  constructor(private readonly t: Transport) {}

  /** The entitlements and the `plan` that applies now. */
  list(customer: string, options?: RequestOptions): Promise<EntitlementList> {
    return this.t.get(`/v1/customers/${seg(customer)}/entitlements`, undefined, options);
  }
}

/** `/v1/customers/{id}/auto-topup`: buy a package off-session when credits run low. */
export class AutoTopupResource {
  constructor(private readonly t: Transport) {}

  retrieve(customer: string, options?: RequestOptions): Promise<AutoTopup> {
    return this.t.get(`/v1/customers/${seg(customer)}/auto-topup`, undefined, options);
  }

  update(customer: string, params: AutoTopupUpdateParams, options?: RequestOptions): Promise<AutoTopup> {
    return this.t.post(`/v1/customers/${seg(customer)}/auto-topup`, params, options);
  }
}
