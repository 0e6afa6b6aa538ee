import type { RequestOptions, Transport } from './core.js';

/** One page of a list endpoint, as creditd answers it. */
export interface Page<T> {
  object: string;
  data: T[];
  has_more: boolean;
}

export interface ListParams {
  /** Items per page, 1–100 (default 10). */
  limit?: number;
  /** Start after this id (the last id of a previous page). */
  starting_after?: string;
}

/**
 * A list that pages itself: `for await (const entry of creditd.ledger.list(id))` walks every
 * item, newest first, fetching the next page after the last id of the previous one.
 */
export class AutoPager<T extends { id: string }> implements AsyncIterable<T> {
  constructor(
    private readonly transport: Transport,
    private readonly path: string,
    private readonly params: ListParams & Record<string, string | number | undefined>,
    private readonly options?: RequestOptions,
  ) {}

  /** The first page only (or the page after `starting_after`). */
  firstPage(): Promise<Page<T>> {
    return this.transport.get<Page<T>>(this.path, this.params, this.options);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let params = this.params;
    for (;;) {
      const page = await this.transport.get<Page<T>>(this.path, params, this.options);
      yield* page.data;
      const last = page.data[page.data.length - 1];
      if (!page.has_more || !last) return;
      params = { ...params, starting_after: last.id };
    }
  }

  /** Every item (at most `max`, default 10 000) in one array. */
  async toArray(max = 10_000): Promise<T[]> {
    const items: T[] = [];
    for await (const item of this) {
      if (items.length >= max) break;
      items.push(item);
    }
    return items;
  }
}
