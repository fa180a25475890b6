"""The channels' routes, mounted by the app: WeCom's callback and the web chat."""

from __future__ import annotations

from fastapi import APIRouter

from siyu.channels.webchat.api import router as webchat_router
from siyu.channels.wecom.api import router as wecom_router

router = APIRouter()
router.include_router(wecom_router)
router.include_router(webchat_router)
