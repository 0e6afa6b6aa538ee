import type { RequestOptions, Transport } from '../core.js';
import { AutoPager, type ListParams } from '../list.js';
import type {
  BillingPortalCreateParams,
  BillingPortalSession,
  CheckoutSession,
  CheckoutSessionCreateParams,
  Package,
  PackageCreateParams,
  PackageSyncReport,
  Payment,
  PaymentIntent,
  PaymentIntentCreateParams,
  Plan,
  PlanCreateParams,
  PlanUpdateParams,
  StripeEvent,
  SubscriptionCheckoutSession,
} from '../types.js';
import { seg } from './customers.js';

/** `/v1/packages`: credit packages the app sells. */
export class Packages {
  constructor(private readonly t: Transport) {}

  /** Active packages, oldest first. */
  async list(options?: RequestOptions): Promise<Package[]> {
    return (await this.t.get<{ data: Package[] }>('/v1/packages', undefined, options)).data;
  }

  create(params: PackageCreateParams, options?: RequestOptions): Promise<Package> {
    return this.t.post('/v1/packages', params, options);
  }

  archive(id: string, options?: RequestOptions): Promise<Package> {
    return this.t.post(`/v1/packages/${seg(id)}/archive`, {}, options);
  }

  /**
   * Imports packages from Stripe: one-time Prices whose Price or Product carries
   * `credits_amount` metadata. Changed ones are updated, removed ones archived, recurring ones
   * refused by name; the report says which.
   */
  sync(options?: RequestOptions): Promise<PackageSyncReport> {
    return this.t.post('/v1/packages/sync', {}, options);
  }
}

/** `/v1/plans`: subscription plans. */
export class Plans {
  constructor(private readonly t: Transport) {}

  /** Active plans, cheapest first. */
  async list(options?: RequestOptions): Promise<Plan[]> {
    return (await this.t.get<{ data: Plan[] }>('/v1/plans', undefined, options)).data;
  }

  create(params: PlanCreateParams, options?: RequestOptions): Promise<Plan> {
    return this.t.post('/v1/plans', params, options);
  }

  /** Replaces what the plan includes (`features`); applies to its customers from now on. */
  update(id: string, params: PlanUpdateParams, options?: RequestOptions): Promise<Plan> {
    return this.t.post(`/v1/plans/${seg(id)}`, params, options);
  }
}

/** `/v1/checkout-sessions`: Stripe Checkout for a package (or a plan). */
export class CheckoutSessions {
  constructor(private readonly t: Transport) {}

  create(params: CheckoutSessionCreateParams & { package: string }, options?: RequestOptions): Promise<CheckoutSession>;
  create(params: CheckoutSessionCreateParams & { plan: string }, options?: RequestOptions): Promise<SubscriptionCheckoutSession>;
  create(params: CheckoutSessionCreateParams, options?: RequestOptions): Promise<CheckoutSession | SubscriptionCheckoutSession> {
    return this.t.post('/v1/checkout-sessions', params, options);
  }

  /** Grants a paid session's credits now (safe to repeat). */
  fulfill(id: string, options?: RequestOptions): Promise<Payment> {
    return this.t.post(`/v1/checkout-sessions/${seg(id)}/fulfill`, {}, options);
  }
}

/** `/v1/payment-intents`: a PaymentIntent for Stripe Elements. */
export class PaymentIntents {
  constructor(private readonly t: Transport) {}

  create(params: PaymentIntentCreateParams, options?: RequestOptions): Promise<PaymentIntent> {
    return this.t.post('/v1/payment-intents', params, options);
  }
}

/** `/v1/payments`: a customer's purchases. */
export class Payments {
  constructor(private readonly t: Transport) {}

  list(params: ListParams & { customer: string }, options?: RequestOptions): AutoPager<Payment> {
    return new AutoPager(this.t, '/v1/payments', { ...params }, options);
  }
}

/** `/v1/billing-portal`: Stripe's customer portal. */
export class BillingPortal {
  constructor(private readonly t: Transport) {}

  create(params: BillingPortalCreateParams, options?: RequestOptions): Promise<BillingPortalSession> {
    return this.t.post('/v1/billing-portal', params, options);
  }
}

/** `/v1/stripe/events`: Stripe events as creditd recorded them. */
export class StripeEvents {
  constructor(private readonly t: Transport) {}

  list(
    params: ListParams & { status?: 'processing' | 'processed' | 'ignored' | 'failed' } = {},
    options?: RequestOptions,
  ): AutoPager<StripeEvent> {
    return new AutoPager(this.t, '/v1/stripe/events', { ...params }, options);
  }

  retry(id: string, options?: RequestOptions): Promise<StripeEvent> {
    return this.t.post(`/v1/stripe/events/${seg(id)}/retry`, {}, options);
  }
}
