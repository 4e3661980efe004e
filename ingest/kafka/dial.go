package kafka

import (
	"bufio"
	"context"
	"net"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// readBufferSize is the read buffer of a fetch connection. kafka-go reads
// a connection through a 4 KiB bufio.Reader and a message value through
// it in small reads, so a 16 MiB fetch response cost some 4,000 read
// system calls: one in five CPU-seconds of reading Kafka went to read(2).
// A 256 KiB buffer under it takes what the socket holds in one call.
const readBufferSize = 256 << 10

// fetchDialer returns the dialer of the partition readers: kafka-go's
// defaults, with connections read through a large buffer.
func fetchDialer() *kafkago.Dialer {
	nd := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &kafkago.Dialer{
		Timeout:   10 * time.Second,
		DualStack: true,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, address)
			if err != nil {
				return nil, err
			}
			return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}, nil
		},
	}
}

// bufferedConn is a net.Conn read through a large buffer. Deadlines apply
// to the underlying connection, so a read that must wait for the socket
// still times out; bytes already buffered are returned at once.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads from the buffer, refilling it from the connection.
func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
