"""Which payment channel a shopper's phone should pay through: pure, from the User-Agent.

A shopper who scans with WeChat can only pay with WeChat Pay inside it, one who scans with
Alipay only with Alipay; any other browser (a phone camera) gets a choice page, unless
only one channel is configured.
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["choose_channel", "APP_CHANNELS"]

#: User-Agent marker of a payer app -> the channel that app pays with.
APP_CHANNELS = (("MicroMessenger", "wechatpay"), ("AlipayClient", "alipay"))


def choose_channel(user_agent: str | None, configured: Collection[str],
                   requested: str | None = None) -> str | None:
    """The channel to use, or None when the shopper must choose.

    ``requested`` (from the choice page) wins when configured. A payer app's own channel
    wins next; an app whose channel is not configured falls through to the others.
    """
    if requested:
        return requested if requested in configured else None
    agent = user_agent or ""
    for marker, channel in APP_CHANNELS:
        if marker in agent and channel in configured:
            return channel
    if len(configured) == 1:
        return next(iter(configured))
    return None
