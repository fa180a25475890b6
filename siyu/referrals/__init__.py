"""Referrals: personal invite codes and channel codes (渠道活码), attribution of new
customers to a code and its sharer, and qualification with points rewards when the new
customer's first paid order lands (see docs/growth.md)."""

from siyu.referrals import hooks as _hooks

_hooks.register()
