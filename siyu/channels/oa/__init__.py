"""Official account (公众号) channel: the callback protocol, customer-service replies, tokens.

* :mod:`.protocol` verifies callbacks (plaintext mode: ``signature``; safe mode:
  ``msg_signature`` + AES, the scheme WeCom shares, from :mod:`siyu.channels.wecom.crypto`) and
  parses their XML or JSON into :class:`~.protocol.OaInbound`.
* :mod:`.inbound` stores messages for the service desk and events on the customer's timeline.
* :mod:`.window` knows whether the customer-service message API may still answer a follower.
* :mod:`.tokens` keeps the access token in the database, refreshed by one worker for all.
* :mod:`.client` and :mod:`.adapter` send replies through ``cgi-bin/message/custom/send``.
"""
