import type { components } from './generated/openapi.js';

/** The API's schemas by their OpenAPI component names, generated from creditd's /openapi.json. */
type Schemas = components['schemas'];

/**
 * creditd also takes whole numbers for credits; this client sends decimal strings only, so no
 * `number` ever carries an amount.
 */
type WithCredits<T, K extends keyof T> = Omit<T, K> & { [P in K]: undefined extends T[P] ? string | undefined : string };

export type Customer = Schemas['Customer'];
export type CustomerCreateParams = Schemas['CustomerIn'];
export type Grant = Schemas['Grant'];
export type GrantCreateParams = WithCredits<Schemas['GrantIn'], 'amount'>;
export type LedgerEntry = Schemas['Entry'];
export type Usage = Schemas['Usage'];
export type UsageRecordParams = WithCredits<Schemas['UsageIn'], 'amount'>;
export type Hold = Schemas['Hold'];
export type HoldStatus = Schemas['HoldStatus'];
export type HoldCreateParams = WithCredits<Schemas['HoldIn'], 'amount'>;
export type HoldCaptureParams = WithCredits<Schemas['CaptureIn'], 'amount'>;
export type CheckParams = WithCredits<Schemas['CheckIn'], 'amount'>;
export type CheckResult = Schemas['CheckOut'];
export type Package = Schemas['Package'];
export type PackageCreateParams =
  | { name: string; credits: string; price: number; currency: string; stripe_price?: undefined }
  | { name: string; credits: string; stripe_price: string; price?: undefined; currency?: undefined };
export type Plan = Schemas['Plan'];
export type PlanCreateParams = WithCredits<Schemas['PlanIn'], 'credits' | 'rollover_cap'>;
export type Payment = Schemas['Payment'];
export type CheckoutSessionCreateParams = Omit<Schemas['CheckoutIn'], 'package' | 'plan' | 'quantity'> &
  ({ package: string; quantity?: number; plan?: undefined } | { plan: string; package?: undefined; quantity?: undefined });
export type CheckoutSession = Schemas['CheckoutOut'];
export type SubscriptionCheckoutSession = Schemas['SubscriptionCheckoutOut'];
export type PaymentIntentCreateParams = Schemas['PaymentIntentIn'];
export type PaymentIntent = Schemas['PaymentIntentOut'];
export type BillingPortalCreateParams = Schemas['PortalIn'];
export type BillingPortalSession = Schemas['PortalOut'];
export type StripeEvent = Schemas['EventOut'];
export type UsageSummary = Schemas['UsageSummary'];
export type UsageRow = Schemas['UsageRow'];
export type MeCheckoutSessionCreateParams = Schemas['MeCheckoutIn'];
export type ErrorBody = Schemas['ErrorBody'];
export type { components, paths } from './generated/openapi.js';
export type CustomerUpdateParams = Schemas['CustomerUpdateIn'];
export type UsageBatchRecord = WithCredits<Schemas['UsageRecordIn'], 'amount'>;
export type UsageBatchParams = { records: UsageBatchRecord[] };
export type UsageBatchResult = Schemas['UsageBatchOut'];
export type WebhookEndpoint = Schemas['EndpointOut'];
export type WebhookEndpointCreateParams = Schemas['EndpointIn'];
export type WebhookEndpointUpdateParams = Schemas['EndpointUpdateIn'];
export type WebhookDelivery = Schemas['DeliveryOut'];
export type Deleted = Schemas['Deleted'];
export type Feature = Schemas['Feature'];
export type FeatureCreateParams = Schemas['FeatureIn'];
export type FeatureUpdateParams = Schemas['FeatureUpdate'];
export type Budget = Schemas['Budget'];
export type BudgetCreateParams = Schemas['BudgetIn'];
export type Entitlement = Schemas['EntitlementView'];
export type EntitlementList = Schemas['EntitlementList'];
export type AutoTopup = Schemas['AutoTopupView'];
export type AutoTopupUpdateParams = Schemas['AutoTopupIn'];
export type OutboundEvent = Schemas['OutboundEventOut'];
export type OutboundEventListParams = { customer?: string };
export type Redelivery = Schemas['Redelivery'];
export type PackageSyncReport = Schemas['SyncReport'];
export type PlanUpdateParams = Schemas['PlanUpdate'];
