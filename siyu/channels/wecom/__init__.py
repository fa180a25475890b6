"""WeCom (企业微信) channel: the callback encryption protocol and the message XML format.

Pure protocol code, with no web framework and no database: :mod:`.crypto` verifies and decrypts
callbacks and encrypts passive replies, :mod:`.messages` parses decrypted messages and builds
reply XML.
"""
