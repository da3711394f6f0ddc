"""Reading JetStream streams from tests: a minimal NATS client over the standard library that
sends JetStream API requests ($JS.API.*) and reads their replies, enough to fetch every message
a stream holds by sequence number."""
import base64
import json
import socket
import urllib.parse

INBOX = "_INBOX.ft_tests"


class JetStream:
    def __init__(self, url, timeout=10):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port or 4222), timeout=timeout)
        self.buf = b""
        self._line()  # the server's INFO
        connect = {"verbose": False, "pedantic": False, "lang": "python", "version": "0"}
        if u.username:
            connect.update(user=urllib.parse.unquote(u.username), **{"pass": urllib.parse.unquote(u.password or "")})
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nSUB " + INBOX.encode() + b" 1\r\n")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("nats-server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _bytes(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self, subject, body):
        """Sends body (a dict, as JSON) to subject and returns the decoded reply."""
        data = json.dumps(body).encode()
        self.sock.sendall(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), INBOX.encode(), len(data), data))
        while True:
            line = self._line()
            if line.startswith(b"MSG "):
                payload = self._bytes(int(line.split()[-1]) + 2)[:-2]
                return json.loads(payload)
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise ConnectionError(line.decode(errors="replace"))

    def messages(self, stream):
        """Every message the stream holds now, as (subject, decoded JSON data), in stream order."""
        state = self.request(f"$JS.API.STREAM.INFO.{stream}", {})["state"]
        out = []
        for seq in range(state["first_seq"], state["last_seq"] + 1):
            r = self.request(f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq})
            if "message" in r:  # else deleted (a work queue's acknowledged message, say)
                out.append((r["message"]["subject"], json.loads(base64.b64decode(r["message"].get("data", "")) or b"null")))
        return out
