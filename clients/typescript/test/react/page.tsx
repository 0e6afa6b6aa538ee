// The page the browser test renders: every creditd/react component against a real creditd.
import { createRoot } from 'react-dom/client';
import { useState } from 'react';

import { BuyCredits, CreditdProvider, CreditsBalance, LowCreditsWarning, UsageChart, usePayments } from '../../dist/esm/react/index.js';

function Payments() {
  const { data } = usePayments();
  return (
    <ul className="payments" aria-label="Payments">
      {data?.map((p) => (
        <li key={p.id}>
          {p.credits} credits · {p.status}
        </li>
      ))}
    </ul>
  );
}

function App({ token, baseUrl, pkg }: { token: string; baseUrl: string; pkg: string }) {
  const [checkout, setCheckout] = useState('');
  return (
    <CreditdProvider token={token} baseUrl={baseUrl} lowBalanceThreshold="10" refreshIntervalMs={0}>
      <main>
        <h1>
          Your credits: <CreditsBalance />
        </h1>
        <LowCreditsWarning />
        <BuyCredits package={pkg} onCheckout={setCheckout}>
          Buy 100 credits
        </BuyCredits>
        <output id="checkout">{checkout}</output>
        <h2>Usage</h2>
        <UsageChart width={360} height={120} groupBy="feature" />
        <h2>Payments</h2>
        <Payments />
      </main>
    </CreditdProvider>
  );
}

const params = new URLSearchParams(location.hash.slice(1));
createRoot(document.getElementById('root')!).render(
  <App token={params.get('token') ?? ''} baseUrl={params.get('base') ?? ''} pkg={params.get('pkg') ?? ''} />,
);
