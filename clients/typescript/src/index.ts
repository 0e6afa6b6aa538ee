import { type ClientOptions, type RequestOptions, Transport } from './core.js';
import { Customers, Grants, Ledger } from './resources/customers.js';
import { Me } from './resources/me.js';
import { BillingPortal, CheckoutSessions, Packages, PaymentIntents, Payments, Plans, StripeEvents } from './resources/purchases.js';
import { AutoTopupResource, Budgets, Entitlements, Features, OutboundEvents, WebhookEndpoints } from './resources/platform.js';
import { Holds, meter, type MeterParams, UsageResource } from './resources/spend.js';
import type { CheckParams, CheckResult, Hold } from './types.js';

/**
 * creditd's API, Stripe-SDK style:
 *
 *   const creditd = new Creditd({ apiKey: process.env.CREDITD_KEY!, baseUrl: 'http://127.0.0.1:8080' });
 *   await creditd.customers.create({ id: 'user_123' });
 *   for await (const entry of creditd.ledger.list('user_123')) console.log(entry.amount);
 */
export class Creditd {
  readonly customers: Customers;
  readonly grants: Grants;
  readonly ledger: Ledger;
  readonly usage: UsageResource;
  readonly holds: Holds;
  readonly packages: Packages;
  readonly plans: Plans;
  readonly checkoutSessions: CheckoutSessions;
  readonly paymentIntents: PaymentIntents;
  readonly payments: Payments;
  readonly billingPortal: BillingPortal;
  readonly stripeEvents: StripeEvents;
  readonly webhookEndpoints: WebhookEndpoints;
  readonly outboundEvents: OutboundEvents;
  readonly features: Features;
  readonly budgets: Budgets;
  readonly entitlements: Entitlements;
  readonly autoTopup: AutoTopupResource;
  /** The customer-token endpoints (construct the client with the token as `apiKey`). */
  readonly me: Me;
  private readonly transport: Transport;

  constructor(options: ClientOptions) {
    const t = new Transport(options);
    this.transport = t;
    this.customers = new Customers(t);
    this.grants = new Grants(t);
    this.ledger = new Ledger(t);
    this.usage = new UsageResource(t);
    this.holds = new Holds(t);
    this.packages = new Packages(t);
    this.plans = new Plans(t);
    this.checkoutSessions = new CheckoutSessions(t);
    this.paymentIntents = new PaymentIntents(t);
    this.payments = new Payments(t);
    this.billingPortal = new BillingPortal(t);
    this.stripeEvents = new StripeEvents(t);
    this.webhookEndpoints = new WebhookEndpoints(t);
    this.outboundEvents = new OutboundEvents(t);
    this.features = new Features(t);
    this.budgets = new Budgets(t);
    this.entitlements = new Entitlements(t);
    this.autoTopup = new AutoTopupResource(t);
    this.me = new Me(t);
  }

  /** Would `amount` (or `units` of `feature`, on `budget`) be allowed now? Changes nothing; `reason` says why not. */
  check(params: CheckParams, options?: RequestOptions): Promise<CheckResult> {
    return this.transport.post('/v1/check', params, options);
  }

  /** Hold → run → capture (or release and rethrow): see {@link MeterParams}. */
  meter(params: MeterParams, call: (hold: Hold) => Promise<string> | string): Promise<Hold> {
    return meter(this.holds, params, call);
  }
}

export { CreditdError } from './error.js';
export { compareCredits, credits, fromMicros, toMicros, type CreditsInput } from './decimal.js';
export { AutoPager, type ListParams, type Page } from './list.js';
export type { ClientOptions, RequestOptions } from './core.js';
export type { MeterParams } from './resources/spend.js';
export type { UsageQuery } from './resources/me.js';
export type * from './types.js';
export { verify as verifyWebhook, webhooks, WebhookVerificationError, type VerifyOptions, type WebhookEvent, type WebhookHeaders } from './webhooks.js';
