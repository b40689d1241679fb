"""status-serve's local feed read a line at a time: the one reader under
netcluster.Feed, status_serve.Subscriber and the fleet row's reader, which
differ only in what they make of a timeout or a close."""
import socket
import time


class FeedLines:
    """A connection to a unix stream socket that speaks newline-ended lines."""

    def __init__(self, path, rcvbuf=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:  # set before connect, so the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(path)
        self.buf = b""

    def line(self, timeout):
        """The next line without its newline; None when none was complete
        within timeout seconds (what came so far is kept); EOFError when the
        other side closed first."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise EOFError("the feed closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def close(self):
        self.sock.close()
