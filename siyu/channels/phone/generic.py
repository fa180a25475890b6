"""A thin adapter for a generic cloud call centre's callback format.

Many call centres post one flat JSON object per call step, in their own names, and expect a
list of commands back. This adapter takes such a callback at
``/channels/phone/generic/webhook`` — signed like siyu's own protocol (same headers, same
``SIYU_PHONE_SECRET``), checked over the raw body before anything is parsed — maps it onto
a siyu event, runs it, and maps the actions back::

    {"event": "start" | "asr" | "dtmf" | "bridged" | "answered" | "hangup",
     "callId": "...", "seq": 3, "caller": "138...", "callee": "400...", "vpId": "...",
     "asrText": "...", "asrFinal": true, "asrConfidence": 0.9, "digits": "4",
     "agent": "...", "duration": 42, "recordUrl": "..."}
    ->  {"commands": [{"cmd": "tts", "text": "..."}, {"cmd": "gather", "mode": "speech",
         "timeout": 8}, {"cmd": "bridge", "queue": "order", "agentId": null},
         {"cmd": "hangup"}]}

``callId`` + ``seq`` is the event id, so a repeated callback is refused as a replay.
"""

from __future__ import annotations

import json
from typing import Any

from siyu.channels.phone.protocol import PhoneRefused

EVENTS = {"start": "call.started", "asr": "utterance", "dtmf": "dtmf",
          "bridged": "call.transferred", "answered": "call.answered", "hangup": "call.ended"}
FIELDS = {"caller": "from", "callee": "to", "vpId": "voiceprint_id", "asrText": "text",
          "asrFinal": "final", "asrConfidence": "confidence", "digits": "digits",
          "agent": "agent", "duration": "duration_seconds", "recordUrl": "recording_ref"}


def to_event(body: bytes) -> bytes:
    """The provider's callback as a siyu event body (validated afterwards like any)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise PhoneRefused("invalid_event", "body: not JSON", status_code=422,
                           details=[{"field": "body", "reason": "not JSON"}]) from None
    if not isinstance(data, dict) or data.get("event") not in EVENTS:
        raise PhoneRefused("invalid_event", f"event: one of {', '.join(EVENTS)}",
                           status_code=422,
                           details=[{"field": "event", "reason": "unknown callback"}])
    event: dict[str, Any] = {"type": EVENTS[data["event"]], "call_id": data.get("callId"),
                             "event_id": f"{data.get('callId')}:{data.get('seq')}"}
    event.update({ours: data[theirs] for theirs, ours in FIELDS.items() if theirs in data})
    return json.dumps(event, ensure_ascii=False).encode()


def to_commands(answer: dict[str, Any]) -> dict[str, Any]:
    """siyu's actions as the provider's commands."""
    commands: list[dict[str, Any]] = []
    for action in answer["actions"]:
        kind = action["type"]
        if kind == "speak":
            commands.append({"cmd": "tts", "text": action["text"]})
        elif kind == "listen":
            dtmf = action.get("input") == "dtmf"
            commands.append({"cmd": "gather", "mode": "dtmf" if dtmf else "speech",
                             "timeout": action.get("timeout_seconds", 8),
                             **({"maxDigits": action.get("max_digits", 1)} if dtmf else {})})
        elif kind == "transfer":
            commands.append({"cmd": "bridge", "queue": action["queue"],
                             "agentId": action.get("agent_user_id")})
        elif kind == "hangup":
            commands.append({"cmd": "hangup"})
    return {"callId": answer["call_id"], "commands": commands}
