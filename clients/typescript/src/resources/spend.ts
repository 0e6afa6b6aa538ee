import type { RequestOptions, Transport } from '../core.js';
import { randomKey } from '../core.js';
import { CreditdError } from '../error.js';
import type { Hold, HoldCaptureParams, HoldCreateParams, Usage, UsageBatchParams, UsageBatchResult, UsageRecordParams } from '../types.js';
import { seg } from './customers.js';

/** `/v1/usage`: deduct credits for one request, exactly once per idempotency key. */
export class UsageResource {
  constructor(private readonly t: Transport) {}

  /** Throws `CreditdError` 402 `insufficient_credits` (nothing deducted) when available credits fall short. */
  record(params: UsageRecordParams, options?: RequestOptions): Promise<Usage> {
    return this.t.post('/v1/usage', params, options);
  }

  /**
   * Up to 1,000 records in order, one result each (`status` 200 with `usage`, or the error a
   * single record would get). Each record is exactly-once by its `idempotency_key`, or by the
   * request's key plus its index.
   */
  recordBatch(params: UsageBatchParams, options?: RequestOptions): Promise<UsageBatchResult> {
    return this.t.post('/v1/usage/batch', params, options);
  }
}

/** `/v1/holds`: two-phase spending for calls whose cost is known only at the end. */
export class Holds {
  constructor(private readonly t: Transport) {}

  create(params: HoldCreateParams, options?: RequestOptions): Promise<Hold> {
    return this.t.post('/v1/holds', params, options);
  }

  retrieve(id: string, options?: RequestOptions): Promise<Hold> {
    return this.t.get(`/v1/holds/${seg(id)}`, undefined, options);
  }

  /** Spends `amount` (default the whole hold; may exceed it when available credits cover it). */
  capture(id: string, params: HoldCaptureParams = {}, options?: RequestOptions): Promise<Hold> {
    return this.t.post(`/v1/holds/${seg(id)}/capture`, params, options);
  }

  release(id: string, options?: RequestOptions): Promise<Hold> {
    return this.t.post(`/v1/holds/${seg(id)}/release`, {}, options);
  }
}

export interface MeterParams {
  customer: string;
  /** What the call is, e.g. `chat`; recorded on the hold and its capture. */
  feature: string;
  /** Credits to hold while the call runs (a decimal string). */
  estimate: string;
  /**
   * One id for this call; the hold, capture and release keys derive from it, so running
   * `meter` again with the same id never charges twice. Default: a random id.
   */
  requestId?: string;
  /** Seconds before an uncaptured hold releases itself (default: creditd's). */
  ttlSeconds?: number;
  metadata?: Record<string, unknown>;
}

/**
 * Holds `estimate`, runs `call`, captures the credits `call` returns, or releases the hold if
 * `call` throws (and rethrows). Returns the captured hold. A retry with the same `requestId`
 * after a completed capture returns that capture without running `call` again; a failed
 * release is left to the hold's TTL (the call's own error is what is thrown).
 */
export async function meter(
  holds: Holds,
  params: MeterParams,
  call: (hold: Hold) => Promise<string> | string,
): Promise<Hold> {
  const requestId = params.requestId ?? randomKey();
  const create: HoldCreateParams = { customer: params.customer, amount: params.estimate, feature: params.feature };
  if (params.ttlSeconds !== undefined) create.ttl_seconds = params.ttlSeconds;
  if (params.metadata !== undefined) create.metadata = params.metadata;
  const created = await holds.create(create, { idempotencyKey: `${requestId}:hold` });
  // A retried meter gets the first answer replayed, as it was then: read what it is now.
  const hold = await holds.retrieve(created.id);
  if (hold.status === 'captured') return hold;
  if (hold.status !== 'open') {
    throw new CreditdError({
      status: 409,
      code: 'hold_not_open',
      message: `the hold of request ${requestId} is already ${hold.status}; use a new requestId`,
    });
  }
  let actual: string;
  try {
    actual = await call(hold);
    if (typeof actual !== 'string') {
      throw new TypeError('the metered function must return the credits it used as a decimal string');
    }
  } catch (error) {
    await holds.release(hold.id, { idempotencyKey: `${requestId}:release` }).catch(() => undefined);
    throw error;
  }
  return holds.capture(hold.id, { amount: actual, feature: params.feature }, { idempotencyKey: `${requestId}:capture` });
}
