"""The rendezvous of the "nccl" backend: how the ranks find each other before NCCL takes over.

`rendezvous(init_method, rank, world_size)` reads rank 0's address, this rank and the world size: from the
environment for "env://" (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, as torchrun and ember.distributed.run set
them; rank= and world_size= arguments win over RANK and WORLD_SIZE), or from "tcp://host:port" with rank= and
world_size= given. `TCPStore` is a small key-value store over TCP (torch's name and constructor): rank 0 serves
it from a thread, the other ranks connect to it (retrying until the timeout), `set` stores a value and `get`
waits for a key. Only NCCL's unique ids travel through it; the tensors move through NCCL.

Protocol, one request after another on each connection: b"S", key, value -> b"+" ; b"G", key -> value, each
key and value sent as a 4-byte big-endian length and its bytes. A get is answered once the key is set.
"""
from __future__ import annotations

import datetime
import os
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

__all__ = ["TCPStore", "rendezvous"]

_FN = "ember.distributed.init_process_group"


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{_FN}: {name} must be an integer, got {value!r}") from None


def rendezvous(init_method: str | None, rank: int, world_size: int) -> tuple:
    """(host, port, rank, world_size) of the rendezvous `init_method` names (None: "env://"); rank and world_size
    of -1 (or None) are read from it. Raises ValueError naming what is missing or wrong."""
    method = init_method or "env://"
    rank = -1 if rank is None else rank
    world_size = -1 if world_size is None else world_size
    if method == "env://":
        def env(name: str, what: str) -> str:
            value = os.environ.get(name, "")
            if not value:
                raise ValueError(f"{_FN}: init_method 'env://' needs the environment variable {name} ({what}), "
                                 f"which is not set: start the ranks with `python -m ember.distributed.run "
                                 f"--nproc-per-node N script.py` (or torchrun), which sets MASTER_ADDR, MASTER_PORT, "
                                 f"RANK and WORLD_SIZE, or pass init_method='tcp://host:port' with rank= and "
                                 f"world_size=")
            return value
        host = env("MASTER_ADDR", "the host of rank 0")
        port = _int(env("MASTER_PORT", "the port of rank 0's store"), "MASTER_PORT")
        if rank < 0:
            rank = _int(env("RANK", "this process's rank"), "RANK")
        if world_size < 0:
            world_size = _int(env("WORLD_SIZE", "the number of ranks"), "WORLD_SIZE")
    elif method.startswith("tcp://"):
        try:
            parts = urlsplit(method)
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if not host or port is None:
            raise ValueError(f"{_FN}: init_method must be 'tcp://host:port', got {init_method!r}")
        if rank < 0 or world_size < 0:
            raise ValueError(f"{_FN}: init_method {init_method!r} needs rank= and world_size= (got rank={rank}, "
                             f"world_size={world_size})")
    else:
        raise ValueError(f"{_FN}: the 'nccl' backend's init_method must be 'env://' (the default) or "
                         f"'tcp://host:port', got {init_method!r}")
    if not 0 < port < 65536:
        raise ValueError(f"{_FN}: the store's port must be in [1, 65535], got {port}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"{_FN}: rank must be in [0, world_size) with world_size >= 1, got rank={rank} and "
                         f"world_size={world_size}")
    return host, port, rank, world_size


def _send(sock, *chunks: bytes) -> None:
    sock.sendall(b"".join(struct.pack(">I", len(c)) + c for c in chunks))


def _recv_exact(sock, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("the store closed the connection")
        buf += part
    return bytes(buf)


def _recv(sock) -> bytes:
    n, = struct.unpack(">I", _recv_exact(sock, 4))
    return _recv_exact(sock, n)


class TCPStore:
    """A key-value store over TCP, as torch.distributed.TCPStore: `TCPStore(host_name, port, world_size=None,
    is_master=False, timeout=timedelta(seconds=300))`. The master (rank 0) serves on `port` of every interface
    (0: a free port, then read `.port`) from a daemon thread and answers its own calls in memory; the others
    connect to host_name:port, retrying until the timeout. `set(key, value)` stores bytes (or a str, encoded);
    `get(key)` returns them, waiting up to the timeout for another rank to set the key. world_size is accepted for
    torch's signature; nothing waits for the workers."""

    def __init__(self, host_name: str, port: int, world_size: int | None = None, is_master: bool = False,
                 timeout: datetime.timedelta = datetime.timedelta(seconds=300)):
        self.host, self.port, self.timeout = host_name, int(port), timeout
        self._data = {}
        self._cond = threading.Condition()
        self._lock = threading.Lock()           # one request at a time on the client's connection
        self._server = self._sock = None
        self._master, self._closed = is_master, False
        if is_master:
            self._serve()
        else:
            self._sock = self._connect(time.monotonic() + timeout.total_seconds())

    def _where(self) -> str:
        return f"the rendezvous store at {self.host}:{self.port}"

    # ---- rank 0: the server ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        ways = [{"family": socket.AF_INET6, "dualstack_ipv6": True}] if socket.has_dualstack_ipv6() else []
        for kw in ways + [{}]:          # IPv6 and IPv4, else IPv4 alone
            try:
                self._server = socket.create_server(("", self.port), **kw)
                break
            except OSError as e:
                error = e
        else:
            raise RuntimeError(f"ember.distributed: rank 0 could not serve the rendezvous store on port {self.port} "
                               f"({error}): is another job using this MASTER_PORT? Pick a free one "
                               f"(ember.distributed.run --master-port)")
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._server,), name="ember-store", daemon=True).start()

    def _accept(self, server) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:                     # closed
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._answer, args=(conn,), name="ember-store-conn", daemon=True).start()

    def _answer(self, conn) -> None:
        with conn:
            try:
                while True:
                    op = _recv_exact(conn, 1)
                    key = _recv(conn).decode()
                    if op == b"S":
                        value = _recv(conn)
                        with self._cond:
                            if self._closed:
                                return      # not stored: the client sets it again in rank 0's next store
                            self._data[key] = value
                            self._cond.notify_all()
                        conn.sendall(b"+")
                    elif op == b"G":
                        with self._cond:
                            self._cond.wait_for(lambda: key in self._data or self._closed)
                            if key not in self._data:
                                return      # closed: the client connects again (to rank 0's next store)
                            value = self._data[key]
                        _send(conn, value)
                    else:
                        return
            except (ConnectionError, OSError):
                return

    # ---- the other ranks: a client --------------------------------------------------------------------------

    def _connect(self, deadline: float):
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=max(0.1, deadline - time.monotonic()))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except OSError as e:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"ember.distributed: could not connect to {self._where()} (rank 0's "
                                       f"MASTER_ADDR:MASTER_PORT) within {self.timeout} ({e}): is rank 0 running, "
                                       f"and are the address and port the ones it serves on?") from None
                time.sleep(0.1)

    def _request(self, what: str, late: str, op: bytes, *chunks: bytes, reply) -> bytes:
        """Sends a request and reads its reply (`late`: the error when none comes within the timeout). A
        connection that breaks (rank 0's previous store closing, say) is made again and the request repeated,
        until the timeout."""
        deadline = time.monotonic() + self.timeout.total_seconds()
        with self._lock:
            while True:
                if self._closed:
                    raise RuntimeError(f"ember.distributed: {what} on {self._where()}, which this rank closed")
                if self._sock is None:
                    self._sock = self._connect(deadline)
                self._sock.settimeout(max(0.001, deadline - time.monotonic()))
                try:
                    self._sock.sendall(op)
                    _send(self._sock, *chunks)
                    return reply(self._sock)
                except socket.timeout:
                    self._drop()    # a late answer would arrive out of turn: this connection is done
                    raise RuntimeError(f"ember.distributed: {late}") from None
                except OSError:     # ConnectionError included: connect again
                    self._drop()
                    if time.monotonic() >= deadline:
                        raise RuntimeError(f"ember.distributed: {what} lost {self._where()} and could not get an "
                                           f"answer within {self.timeout}") from None
                    time.sleep(0.1)

    def _drop(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass
        self._sock = None

    # ---- the interface -----------------------------------------------------------------------------------------

    def set(self, key: str, value) -> None:
        value = value.encode() if isinstance(value, str) else bytes(value)
        if self._master:
            with self._cond:
                self._data[key] = value
                self._cond.notify_all()
            return
        self._request(f"set({key!r})", f"set({key!r}) got no answer from {self._where()} within {self.timeout}",
                      b"S", key.encode(), value, reply=lambda sock: _recv_exact(sock, 1))

    def get(self, key: str) -> bytes:
        """The value of `key`, once some rank has set it (RuntimeError after the timeout)."""
        late = (f"key {key!r} of {self._where()} was not set within {self.timeout}: the rank that sets it did not "
                f"get there")
        if self._master:
            with self._cond:
                if not self._cond.wait_for(lambda: key in self._data, self.timeout.total_seconds()):
                    raise RuntimeError(f"ember.distributed: {late}")
                return self._data[key]
        return self._request(f"get({key!r})", late, b"G", key.encode(), reply=_recv)

    def close(self) -> None:
        """Stops serving (rank 0: waiting gets are dropped) or disconnects."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for s in (self._server, self._sock):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)    # wakes the thread in accept(), which holds the port otherwise
                except OSError:
                    pass
                s.close()
        self._server = self._sock = None
