// Package kafka consumes the Custos topics with a kafka-go consumer group and
// turns messages into batches of decoded, validated events for a Processor.
//
// It owns the delivery guarantees on the Kafka side: each assigned partition
// runs in its own goroutine bound to the group generation; decoding and
// validation run in parallel on a shared worker pool while the order within
// a partition is kept for the Processor; invalid messages go to a
// dead-letter topic with the reason; and offsets are committed only for the
// unbroken run of batches the Processor has acknowledged as durably stored.
// It knows nothing of rules or ClickHouse.
package kafka

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// Config configures a Consumer. Zero values take the documented defaults
// (see WithDefaults).
type Config struct {
	// Brokers are the bootstrap brokers. Default ["127.0.0.1:9092"].
	Brokers []string
	// GroupID is the consumer group. Default "custos".
	GroupID string
	// EventsTopic carries data-access and data-share events. Default
	// "custos.events".
	EventsTopic string
	// SubjectsTopic carries subject status changes; empty disables it.
	// Default "custos.subjects".
	SubjectsTopic string
	// DLQTopic receives messages that cannot be decoded or are invalid.
	// Default "custos.dlq".
	DLQTopic string
	// BatchSize is the most messages of one partition per batch. Default
	// 5000.
	BatchSize int
	// BatchTimeout is the longest a batch waits to fill once its first
	// message arrived. Default 100ms.
	BatchTimeout time.Duration
	// MaxInFlight is how many batches of one partition may await
	// acknowledgement before the partition stops fetching (backpressure).
	// Memory is bounded across partitions by MaxBufferedBytes; this keeps
	// one partition from taking all of it. Default 16.
	MaxInFlight int
	// MaxBufferedBytes bounds the bytes of messages fetched and not yet
	// acknowledged as stored, summed over every assigned partition: a
	// partition stops cutting batches (and asks the Processor to flush)
	// while the budget is spent. It bounds the memory of decoded events in
	// flight (about twice their message bytes: the message itself is
	// released once decoded) whatever the number of partitions and their
	// skew; MaxInFlight still bounds each partition. Default 40 MiB.
	MaxBufferedBytes int64
	// CommitInterval is how often acknowledged offsets are committed.
	// Default 500ms. Offsets are also committed when a partition is revoked
	// and on shutdown.
	CommitInterval time.Duration
	// DecodeWorkers is the number of goroutines decoding and validating
	// messages, shared by all partitions. Default GOMAXPROCS.
	DecodeWorkers int
	// FetchMaxBytes is the most bytes of one fetch request. Default 16 MiB.
	FetchMaxBytes int
	// QueueCapacity is how many fetched messages each partition reader
	// buffers ahead of the batches, outside MaxBufferedBytes. Default
	// 1000.
	QueueCapacity int
	// Limits bound the size of events; see event.Limits. Default
	// event.DefaultLimits().
	Limits event.Limits
	// StartFromLatest makes a group with no committed offsets start at the
	// end of the topics instead of the beginning. Default false.
	StartFromLatest bool
	// RebalanceTimeout bounds how long a revoked partition may take to
	// flush and commit. Default 30s.
	RebalanceTimeout time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if c.GroupID == "" {
		c.GroupID = "custos"
	}
	if c.EventsTopic == "" {
		c.EventsTopic = "custos.events"
	}
	if c.DLQTopic == "" {
		c.DLQTopic = "custos.dlq"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 5000
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = 100 * time.Millisecond
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 16
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 500 * time.Millisecond
	}
	if c.DecodeWorkers == 0 {
		c.DecodeWorkers = runtime.GOMAXPROCS(0)
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = 16 << 20
	}
	if c.QueueCapacity == 0 {
		c.QueueCapacity = 1000
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = 40 << 20
	}
	if c.Limits == (event.Limits{}) {
		c.Limits = event.DefaultLimits()
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("kafka: no brokers configured")
	case c.GroupID == "":
		return errors.New("kafka: group id is empty")
	case c.EventsTopic == "":
		return errors.New("kafka: events topic is empty")
	case c.DLQTopic == "":
		return errors.New("kafka: dead-letter topic is empty")
	case c.DLQTopic == c.EventsTopic || c.DLQTopic == c.SubjectsTopic:
		return fmt.Errorf("kafka: dead-letter topic %q must differ from the input topics", c.DLQTopic)
	case c.BatchSize < 1:
		return fmt.Errorf("kafka: batch size %d must be at least 1", c.BatchSize)
	case c.BatchTimeout <= 0:
		return fmt.Errorf("kafka: batch timeout %s must be positive", c.BatchTimeout)
	case c.MaxInFlight < 1:
		return fmt.Errorf("kafka: max in-flight batches %d must be at least 1", c.MaxInFlight)
	case c.MaxBufferedBytes < 1:
		return fmt.Errorf("kafka: max buffered bytes %d must be at least 1", c.MaxBufferedBytes)
	case c.DecodeWorkers < 1:
		return fmt.Errorf("kafka: decode workers %d must be at least 1", c.DecodeWorkers)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("kafka: limits: %w", err)
	}
	return nil
}
