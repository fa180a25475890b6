"""Phone channel: siyu as the brain of a brand's hotline.

A cloud call centre or PBX does the telephony, speech recognition and synthesis, and calls
``/channels/phone/webhook`` at each turn of a call; siyu answers with the next actions
(``speak``, ``listen``, ``transfer``, ``hangup``). See ``docs/phone.md`` for the protocol.

* :mod:`.protocol` verifies the signature (HMAC-SHA256 over timestamp and raw body), the
  skew, and parses events;
* :mod:`.calls` runs a call: identification by the calling number, the bot on final
  utterances, speech-shaped replies, transfers into the agent desk;
* :mod:`.speech` turns chat replies into something a voice can say.
"""
