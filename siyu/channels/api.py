"""The channels' routes, mounted by the app: WeCom and official account callbacks, web chat,
the call centre's and the SMS provider's webhooks, unsubscribe links."""

from __future__ import annotations

from fastapi import APIRouter

from siyu.channels.oa.api import router as oa_router
from siyu.channels.optout_api import router as optout_router
from siyu.channels.phone.api import router as phone_router
from siyu.channels.webchat.api import router as webchat_router
from siyu.channels.wecom.api import router as wecom_router

# Largest body each platform's callback accepts, refused with 413 before it is read or
# parsed. WeCom and the official account send one message or event per callback (an
# encrypted XML envelope of a few KB; a text message is at most 2,048 bytes), the call
# centre one call event: 64 KiB is far above any of them and far below the API's batches.
CALLBACK_BODY_LIMIT = 64 * 1024
CALLBACK_BODY_LIMITS = {"/channels/wecom/callback": CALLBACK_BODY_LIMIT,
                        "/channels/oa/callback": CALLBACK_BODY_LIMIT,
                        "/channels/phone/webhook": CALLBACK_BODY_LIMIT,
                        "/channels/sms/webhook": CALLBACK_BODY_LIMIT}

router = APIRouter()
router.include_router(wecom_router)
router.include_router(webchat_router)
router.include_router(oa_router)
router.include_router(phone_router)
router.include_router(optout_router)
