"""creditd's Python client: prepaid credits and Stripe billing for AI apps.

>>> from creditd import Creditd
>>> c = Creditd(api_key="cd_sk_…", base_url="http://127.0.0.1:8080")
>>> c.customers.create("user_123").balance
Decimal('5')
"""

from . import webhooks
from ._async import AsyncCreditd, AsyncMeter
from ._async_pager import AsyncPager
from ._errors import CreditdError
from ._models import (
    CheckOut,
    CheckoutOut,
    Customer,
    Entry,
    EventOut,
    Grant,
    Hold,
    Package,
    Payment,
    PaymentIntentOut,
    Plan,
    PortalOut,
    SubscriptionCheckoutOut,
    SubscriptionSummary,
    Usage,
    UsageRow,
    UsageSummary,
)
from ._sync import Creditd, Meter
from ._sync_pager import Pager
from ._transport import Amount
from .webhooks import WebhookVerificationError

__all__ = [
    "Amount",
    "AsyncCreditd",
    "AsyncMeter",
    "AsyncPager",
    "CheckOut",
    "CheckoutOut",
    "Creditd",
    "CreditdError",
    "Customer",
    "Entry",
    "EventOut",
    "Grant",
    "Hold",
    "Meter",
    "Package",
    "Pager",
    "Payment",
    "PaymentIntentOut",
    "Plan",
    "PortalOut",
    "SubscriptionCheckoutOut",
    "SubscriptionSummary",
    "Usage",
    "UsageRow",
    "UsageSummary",
    "WebhookVerificationError",
    "webhooks",
]
