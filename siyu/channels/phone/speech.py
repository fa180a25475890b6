"""Replies shaped for a voice: short, no links or lists, numbers as people say them.

Chat replies are written to be read ("1. 订单查询 2. 物流延误", "¥776.00", "14:02",
links); a text-to-speech engine would read them out character by character.
:func:`for_speech` rewrites them: an enumerated choice becomes "A，还是 B？", money becomes
"776元", times "14点02分", links and emoji are dropped (the caller is told one is sent by SMS when
``link_note``), brackets go, and the result is cut at a sentence end near ``max_chars``.
"""

from __future__ import annotations

import re

_URL = re.compile(r"https?://\S+|www\.\S+")
_MONEY = re.compile(r"[¥￥]\s?([0-9][0-9,]*)(?:\.([0-9]{1,2}))?")
_TIME = re.compile(r"(?<![0-9])([01]?[0-9]|2[0-3]):([0-5][0-9])(?![0-9])")
_ITEM = re.compile(r"\s*(?:^|(?<=[\s：:]))[0-9]{1,2}[.、)）]\s*")
_BRACKETS = re.compile(r"[「」『』【】《》\[\]]")
_PAREN = re.compile(r"[（(]([^（）()]*)[）)]")
_SENTENCE_END = "。！？!?"
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]")


def _money(match: re.Match[str]) -> str:
    yuan = match.group(1).replace(",", "")
    cents = (match.group(2) or "").ljust(2, "0")
    jiao, fen = cents[0], cents[1]
    out = f"{int(yuan)}元"
    if jiao != "0":
        out += f"{jiao}角"
    if fen != "0":
        out += f"{fen}分"
    return out


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), match.group(2)
    return f"{hour}点" if minute == "00" else f"{hour}点{minute}分"


def _choices(text: str) -> str:
    """"请问您想咨询的是：1. 订单查询 2. 物流延误催件" -> "…是订单查询，还是物流延误催件？"."""
    parts = _ITEM.split(text)
    if len(parts) < 3:
        return text
    head, items = parts[0].rstrip("：: "), [p.strip(" ，,；;。") for p in parts[1:] if p.strip()]
    if len(items) < 2:
        return text
    return f"{head}{'，还是'.join(items)}？"


def for_speech(text: str, *, max_chars: int = 120, link_note: bool = False) -> str:
    """``text`` as a voice should say it (see the module notes)."""
    had_link = bool(_URL.search(text))
    out = _URL.sub("", text)
    out = _MONEY.sub(_money, out)
    out = _TIME.sub(_time, out)
    out = _choices(out)
    out = _PAREN.sub(lambda m: f"，{m.group(1)}，" if m.group(1).strip() else "", out)
    out = _BRACKETS.sub("", out)
    out = re.sub(r"[~～]+", "", out)
    out = _EMOJI.sub("", out)
    out = re.sub(r"\s+", "", out)
    out = re.sub(r"，{2,}", "，", out).replace("，。", "。").replace("，？", "？").strip("，")
    if len(out) > max_chars:
        cut = max((out.rfind(c, 0, max_chars) for c in _SENTENCE_END), default=-1)
        out = out[: cut + 1] if cut > 0 else out[:max_chars].rstrip("，") + "。"
    if had_link and link_note:
        out += "相关链接我们会用短信发给您。"
    return out


def links_in(text: str) -> list[str]:
    """The links of a reply, in order, each once (they go out by SMS instead of aloud)."""
    return list(dict.fromkeys(m.rstrip("。，,.！!？?）)」") for m in _URL.findall(text)))
