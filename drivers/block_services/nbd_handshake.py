"""The NBD handshake: fixed newstyle option haggling up to transmission (or an abort).

`Handshake(wire, server).run()` answers options until NBD_OPT_EXPORT_NAME or a successful NBD_OPT_GO
(True) or NBD_OPT_ABORT (False); afterwards `structured` and `contexts` say what the client negotiated. It
raises `Closed` for what the protocol answers by closing the connection (bad magic, unknown client flags,
an unknown EXPORT_NAME, too many options, the handshake deadline).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import numpy as np

from . import nbd_protocol as P
from . import nbd_structured as S

if TYPE_CHECKING:
    from .nbd import NbdServer

_MAX_OPTIONS = 128
_MAX_OPTION_DATA = 1 << 16


class Closed(Exception):
    """The connection ends (client gone, protocol violation, or server stopping)."""


class Wire(Protocol):
    """The connection's socket, as the handshake uses it."""

    def send(self, *parts: bytes | memoryview) -> None: ...
    def recv(self, n: int, deadline: float | None = None) -> bytes: ...


class Handshake:
    def __init__(self, wire: Wire, server: NbdServer) -> None:
        self.wire = wire
        self.server = server
        self.structured = False  # NBD_OPT_STRUCTURED_REPLY was acknowledged
        self.contexts: list[str] = []  # the metadata contexts SET_META_CONTEXT selected

    @property
    def transmission_flags(self) -> int:
        """The server's flags, and DF once this client negotiated structured replies."""
        return self.server.transmission_flags | (P.FLAG_SEND_DF if self.structured else 0)

    def run(self) -> bool:
        deadline = time.monotonic() + self.server.handshake_timeout
        self.wire.send(P.HANDSHAKE.pack(P.NBDMAGIC, P.IHAVEOPT, P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES))
        (client_flags,) = np.frombuffer(self.wire.recv(4, deadline), dtype=">u4")
        if int(client_flags) & ~(P.FLAG_C_FIXED_NEWSTYLE | P.FLAG_C_NO_ZEROES):
            raise Closed(f"unknown client flags {int(client_flags):#x}")
        no_zeroes = bool(int(client_flags) & P.FLAG_C_NO_ZEROES)
        for _ in range(_MAX_OPTIONS):
            magic, option, length = P.OPTION.unpack(self.wire.recv(P.OPTION.size, deadline))
            if magic != P.IHAVEOPT:
                raise Closed(f"bad option magic {magic:#x}")
            if length > _MAX_OPTION_DATA:
                raise Closed(f"option {option} carries {length} bytes")
            data = self.wire.recv(length, deadline)
            if option == P.OPT_EXPORT_NAME:
                if not self.known(data):
                    raise Closed("unknown export name")  # EXPORT_NAME cannot fail politely
                self.wire.send(np.array([self.server.export.size], ">u8").tobytes(),
                          np.array([self.transmission_flags], ">u2").tobytes(),
                          b"" if no_zeroes else bytes(124))
                return True
            if option == P.OPT_ABORT:
                self.reply(option, P.REP_ACK)
                return False
            if option in (P.OPT_INFO, P.OPT_GO):
                if self.info(option, data) and option == P.OPT_GO:
                    return True
            elif option == P.OPT_LIST:
                if data:
                    self.reply(option, P.REP_ERR_INVALID, b"NBD_OPT_LIST takes no data")
                else:
                    name = self.server.name.encode()
                    desc = self.server.description.encode()
                    self.reply(option, P.REP_SERVER, len(name).to_bytes(4, "big") + name + desc)
                    self.reply(option, P.REP_ACK)
            elif option == P.OPT_STARTTLS:
                self.reply(option, P.REP_ERR_POLICY, b"this server does not offer TLS")
            elif option == P.OPT_STRUCTURED_REPLY:
                if data:
                    self.reply(option, P.REP_ERR_INVALID, b"NBD_OPT_STRUCTURED_REPLY takes no data")
                else:
                    self.structured = True
                    self.reply(option, P.REP_ACK)
            elif option in (P.OPT_LIST_META_CONTEXT, P.OPT_SET_META_CONTEXT):
                self.meta_context(option, data)
            else:
                self.reply(option, P.REP_ERR_UNSUP, f"option {option} is not supported".encode())
        raise Closed(f"more than {_MAX_OPTIONS} options")

    def meta_context(self, option: int, data: bytes) -> None:
        """LIST_META_CONTEXT / SET_META_CONTEXT: the matching contexts, then ACK; or one error reply."""
        setting = option == P.OPT_SET_META_CONTEXT
        if setting:
            self.contexts = []  # replaced even when the option fails
        try:
            if not self.structured:
                raise S.QueryError(P.REP_ERR_INVALID, "negotiate NBD_OPT_STRUCTURED_REPLY first")
            query = S.parse_meta_query(data)
            if not self.known(query.export):
                raise S.QueryError(P.REP_ERR_UNKNOWN, f"no such export {query.export!r}")
        except S.QueryError as exc:
            self.reply(option, exc.reply, str(exc).encode())
            return
        found = S.matching_contexts(query.queries, listing=not setting)
        for name in found:
            self.reply(option, P.REP_META_CONTEXT, S.meta_context_reply(S.ALLOCATION_ID if setting else 0, name))
        if setting:
            self.contexts = found
        self.reply(option, P.REP_ACK)

    def reply(self, option: int, kind: int, data: bytes = b"") -> None:
        self.wire.send(P.OPT_REPLY.pack(P.OPT_REPLY_MAGIC, option, kind, len(data)) + data)

    def known(self, raw: bytes) -> bool:
        try:
            name = raw.decode()
        except UnicodeDecodeError:
            return False
        return name in ("", self.server.name)

    def info(self, option: int, data: bytes) -> bool:
        """Answer NBD_OPT_INFO/GO; True when the export was accepted."""
        if len(data) < 6:
            self.reply(option, P.REP_ERR_INVALID, b"option data too short")
            return False
        namelen = int.from_bytes(data[:4], "big")
        if namelen > len(data) - 6:
            self.reply(option, P.REP_ERR_INVALID, b"name length exceeds the option data")
            return False
        name = data[4:4 + namelen]
        nreq = int.from_bytes(data[4 + namelen:6 + namelen], "big")
        reqs = data[6 + namelen:]
        if len(reqs) != 2 * nreq:
            self.reply(option, P.REP_ERR_INVALID, b"information request count does not match the data")
            return False
        wanted = {int.from_bytes(reqs[i:i + 2], "big") for i in range(0, len(reqs), 2)}
        if not self.known(name):
            self.reply(option, P.REP_ERR_UNKNOWN, b"no such export: this server has '" +
                       self.server.name.encode() + b"' (or the default name '')")
            return False
        export = self.server.export
        self.reply(option, P.REP_INFO, P.EXPORT_INFO.pack(P.INFO_EXPORT, export.size, self.transmission_flags))
        if P.INFO_NAME in wanted:
            self.reply(option, P.REP_INFO, P.INFO_NAME.to_bytes(2, "big") + self.server.name.encode())
        if P.INFO_DESCRIPTION in wanted and self.server.description:
            self.reply(option, P.REP_INFO,
                       P.INFO_DESCRIPTION.to_bytes(2, "big") + self.server.description.encode())
        if P.INFO_BLOCK_SIZE in wanted:
            minimum = self.server.min_block
            self.reply(option, P.REP_INFO, P.BLOCK_SIZE_INFO.pack(P.INFO_BLOCK_SIZE, minimum,
                                                                  max(4096, minimum), P.MAX_PAYLOAD))
        self.reply(option, P.REP_ACK)
        return True

