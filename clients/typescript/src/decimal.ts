/**
 * Credits are exact decimal strings (up to 6 decimals). The client never turns them into
 * `number`: these helpers compare and add them as integers of micro-credits (bigint).
 */
const CREDITS = /^-?(0|[1-9][0-9]*)(\.[0-9]{1,6})?$/;

/** An amount of credits: a decimal string such as `"2.5"`, or a bigint of micro-credits. */
export type CreditsInput = string | bigint;

/** Micro-credits of a decimal string (`"2.5"` → `2500000n`); throws on anything else. */
export function toMicros(amount: string): bigint {
  if (!CREDITS.test(amount)) {
    throw new TypeError(`not a credits amount (a decimal string with up to 6 decimals): ${JSON.stringify(amount)}`);
  }
  const negative = amount.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? amount.slice(1) : amount).split('.');
  const micros = BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
  return negative ? -micros : micros;
}

/** The shortest decimal string of micro-credits (`2500000n` → `"2.5"`). */
export function fromMicros(micros: bigint): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const whole = abs / 1_000_000n;
  const fraction = (abs % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** The wire form of an amount: a validated decimal string. */
export function credits(amount: CreditsInput): string {
  if (typeof amount === 'bigint') return fromMicros(amount);
  if (typeof amount !== 'string') {
    throw new TypeError('credits are decimal strings or bigint micro-credits, never numbers');
  }
  toMicros(amount);
  return amount;
}

/** -1, 0 or 1 as `a` is less than, equal to or greater than `b`. */
export function compareCredits(a: string, b: string): -1 | 0 | 1 {
  const [x, y] = [toMicros(a), toMicros(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}
