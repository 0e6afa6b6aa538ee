// Starts the built creditd (target/debug, sandbox included) for the client tests, with the
// repository's shared launcher, and builds clients for it.
import { startCreditd } from '../../../browser-tests/lib.mjs';
import { Creditd } from '../dist/esm/index.js';

export { startCreditd };

/** creditd with a Starter package (100 credits for 5.00 usd); `app.client(options)` makes a client. */
export async function startApp(options = {}) {
  const app = await startCreditd({
    setup: [['packages', 'create', '--name', 'Starter', '--credits', '100', '--price', '500', '--currency', 'usd']],
    ...options,
  });
  const pkg = app.cli(['packages', 'list']).trim().split('\n')[0].split('\t')[0];
  return {
    ...app,
    pkg,
    client: (extra = {}) => new Creditd({ apiKey: app.key, baseUrl: app.url, ...extra }),
  };
}

let counter = 0;
/** A customer id no other test uses. */
export const uniqueId = (prefix = 'user') => `${prefix}_${process.pid}_${Date.now()}_${counter++}`;
