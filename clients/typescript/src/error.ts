/** Every failure the client reports: an HTTP error answer from creditd, or a network failure. */
export class CreditdError extends Error {
  /** The HTTP status; 0 when no answer arrived (network failure or timeout). */
  readonly status: number;
  /** creditd's stable machine code, e.g. `insufficient_credits`; `network_error` or `timeout` locally. */
  readonly code: string;
  /** The request field at fault, when creditd named one. */
  readonly param: string | undefined;
  /** With `insufficient_credits`: the customer's balance and available credits (decimal strings). */
  readonly balance: string | undefined;
  readonly available: string | undefined;
  /** The idempotency key the request was sent with, when it had one. */
  readonly idempotencyKey: string | undefined;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    param?: string | undefined;
    balance?: string | undefined;
    available?: string | undefined;
    idempotencyKey?: string | undefined;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'CreditdError';
    this.status = init.status;
    this.code = init.code;
    this.param = init.param;
    this.balance = init.balance;
    this.available = init.available;
    this.idempotencyKey = init.idempotencyKey;
  }
}
