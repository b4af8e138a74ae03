"""Replies both sessions queue and write once per batch of pipelined commands."""

from server.transport import Disconnected

# Replies wait until this much is queued or the client's next command is not
# already here (POP3 PIPELINING, IMAP pipelining): one write per batch.
OUTPUT_FLUSH_SIZE = 1 << 16


class QueuedReplies:
    """Mixin for a session with a `transport`: send() queues, flush() writes.

    Separate small writes would each wait for the client's delayed ACK under
    Nagle (about 40 ms per pipelined reply).
    """

    def reset_output(self):
        self.output = []
        self.output_size = 0

    def send(self, data):
        self.output.append(data)
        self.output_size += len(data)
        if self.output_size >= OUTPUT_FLUSH_SIZE:
            self.flush()

    def flush(self):
        """Write what is queued."""
        if self.output:
            data, self.output, self.output_size = b"".join(self.output), [], 0
            self.transport.write(data)

    def flush_quietly(self):
        try:
            self.flush()
        except Disconnected:
            pass

    @property
    def host(self):
        return self.transport.peer_text()
