"""Messages between the client and the resident renderer over the renderer's UNIX socket.

Standard library only (``_socket`` rather than ``socket``, whose import costs more than
the whole exchange). A message is a tuple of plain values (str, bytes, int, bool, None,
lists, tuples, dicts) sent as a 4-byte length and its ``marshal`` bytes; descriptors
travel with a message as ``SCM_RIGHTS`` data. Both ends check that the other runs as
the same user (:func:`peer_uid`) before reading anything, so ``marshal`` (which trusts
its input) only ever reads what that user could run anyway; the socket name carries the
Python version, so both ends speak the same ``marshal``.

The exchange (client ``->``, renderer ``<-``):

* ``-> ("run", request)`` with the client's stdin, stdout, stderr and working directory
  (:mod:`nbnumba_cli.procstate`); ``<- ("declined", reason)`` (the client renders
  in-process) or ``<- ("ready", pid)``; ``-> ("go",)``; then ``<- ("temporary", path,
  state)`` for each output written to a temporary name (state "created", "renamed",
  "removed") and ``-> ("signal", number)`` for each stop signal the client receives;
  last ``<- ("exit", status)`` or ``<- ("killed", signal number)`` from the renderer.
* ``-> ("status",)``, ``<- ("status", facts)``; ``-> ("stop",)``, ``<- ("stopping", pid)``.
"""
import _socket
import marshal
import os
import sys

#: largest message accepted (bytes; a request is a few kilobytes)
MAX_MESSAGE = 1 << 22
#: most descriptors accepted with one message
MAX_FDS = 8
_INT = 4


class ProtocolError(Exception):
    """The other end sent something that is not a message of this protocol."""


def connect(path, timeout):
    """A socket connected to ``path`` (within ``timeout`` seconds), or None when no one
    listens there (no file, a stale file, permission denied, too slow)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except (OSError, ValueError):
        sock.close()
        return None
    return sock


def connect_renderer(timeout=1.0):
    """A connection to this installation's renderer (:mod:`nbnumba_cli.rundir`), or
    None: none running, or its directory or its process is not this user's own."""
    from . import rundir
    directory = rundir.base_directory()
    if rundir.check_private(directory) is not None:
        return None
    path = rundir.paths(directory)["socket"]
    if len(os.fsencode(path)) > rundir.SOCKET_PATH_MAX:
        return None
    sock = connect(path, timeout)
    if sock is None:
        return None
    try:
        uid = peer_uid(sock)
    except OSError:
        uid = None
    if uid != os.geteuid():
        sock.close()
        return None
    return sock


def peer_uid(sock):
    """The effective uid of the process at the other end of the UNIX socket ``sock``."""
    data = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 3 * _INT)
    return int.from_bytes(data[_INT:2 * _INT], sys.byteorder)


def peer_pid(sock):
    """The pid of the process at the other end of ``sock`` (when it connected)."""
    data = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 3 * _INT)
    return int.from_bytes(data[:_INT], sys.byteorder, signed=True)


def encode(message):
    """The bytes of ``message`` on the wire."""
    data = marshal.dumps(message)
    return len(data).to_bytes(_INT, "little") + data


def send(sock, message, fds=()):
    """Send ``message`` (with the descriptors ``fds``) on ``sock``, whole."""
    payload = encode(message)
    if fds:
        rights = b"".join(fd.to_bytes(_INT, sys.byteorder, signed=True) for fd in fds)
        sent = sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    else:
        sent = sock.send(payload)
    if sent < len(payload):
        sock.sendall(payload[sent:])


class Reader:
    """Messages (and the descriptors that came with them) read from a socket.

    :meth:`fill` does one receive and keeps what arrived; :meth:`next` returns the next
    complete message or None. Nothing received is ever lost between the two, so a
    signal handler that runs in between costs nothing.
    """

    def __init__(self, sock):
        self.sock = sock
        self.buffer = bytearray()
        self.fds = []
        self.eof = False

    def fill(self):
        """Receive once (blocking as the socket does); False at end of stream."""
        data, ancillary, flags, _ = self.sock.recvmsg(
            1 << 16, _socket.CMSG_SPACE(MAX_FDS * _INT), _socket.MSG_CMSG_CLOEXEC)
        for level, kind, payload in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % _INT
                self.fds += [int.from_bytes(payload[i:i + _INT], sys.byteorder, signed=True)
                             for i in range(0, usable, _INT)]
        if flags & _socket.MSG_CTRUNC:
            self.close_fds()
            raise ProtocolError("too many descriptors")
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def next(self):
        """The next complete message, or None (receive more with :meth:`fill`)."""
        if len(self.buffer) < _INT:
            return None
        size = int.from_bytes(self.buffer[:_INT], "little")
        if size > MAX_MESSAGE:
            raise ProtocolError("a message of %d bytes" % size)
        if len(self.buffer) < _INT + size:
            return None
        data = bytes(self.buffer[_INT:_INT + size])
        del self.buffer[:_INT + size]
        try:
            message = marshal.loads(data)
        except (EOFError, ValueError, TypeError) as exc:
            raise ProtocolError(str(exc)) from None
        if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
            raise ProtocolError("not a message")
        return message

    def receive(self):
        """The next message, receiving as needed; None at end of stream."""
        while True:
            message = self.next()
            if message is not None:
                return message
            if not self.fill():
                return None

    def take_fds(self):
        """The descriptors received so far (the caller now owns them)."""
        fds, self.fds = self.fds, []
        return fds

    def close_fds(self):
        for fd in self.take_fds():
            try:
                os.close(fd)
            except OSError:
                pass
