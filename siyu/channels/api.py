"""The channels' routes, mounted by the app: WeCom and official account callbacks, web chat."""

from __future__ import annotations

from fastapi import APIRouter

from siyu.channels.oa.api import router as oa_router
from siyu.channels.phone.api import router as phone_router
from siyu.channels.webchat.api import router as webchat_router
from siyu.channels.wecom.api import router as wecom_router

router = APIRouter()
router.include_router(wecom_router)
router.include_router(webchat_router)
router.include_router(oa_router)
router.include_router(phone_router)
