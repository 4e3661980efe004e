package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// TopicSpec describes a topic Custos needs.
type TopicSpec struct {
	// Name is the topic name.
	Name string
	// Partitions is the partition count used when the topic is created.
	Partitions int
	// ReplicationFactor is used when the topic is created.
	ReplicationFactor int
}

// EnsureTopics creates the topics that do not exist yet; existing topics are
// left as they are. It retries for up to timeout while the brokers start.
func EnsureTopics(ctx context.Context, brokers []string, timeout time.Duration, specs ...TopicSpec) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		last = ensureTopics(ctx, brokers, specs)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("ensure topics on %v: %w", brokers, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func ensureTopics(ctx context.Context, brokers []string, specs []TopicSpec) error {
	var d kafkago.Dialer
	d.Timeout = 5 * time.Second
	conn, err := d.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return err
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return fmt.Errorf("dial controller: %w", err)
	}
	defer cc.Close()
	var configs []kafkago.TopicConfig
	for _, s := range specs {
		if s.Name == "" {
			continue
		}
		configs = append(configs, kafkago.TopicConfig{Topic: s.Name, NumPartitions: max(s.Partitions, 1), ReplicationFactor: max(s.ReplicationFactor, 1)})
	}
	for _, tc := range configs {
		err := cc.CreateTopics(tc)
		if err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", tc.Topic, err)
		}
	}
	// Wait until every partition of every topic has a leader.
	for _, tc := range configs {
		for {
			parts, err := conn.ReadPartitions(tc.Topic)
			if err == nil && len(parts) > 0 && allLed(parts) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// NewTransport returns a kafka-go transport with its own metadata cache.
// Writers on kafka-go's shared DefaultTransport can keep answering "Unknown
// Topic Or Partition" for a topic created after the shared cache was last
// filled; a writer with its own transport reads metadata when first used.
func NewTransport() *kafkago.Transport {
	return &kafkago.Transport{Dial: (&net.Dialer{Timeout: 3 * time.Second}).DialContext}
}

func allLed(parts []kafkago.Partition) bool {
	for _, p := range parts {
		if p.Leader.Port == 0 {
			return false
		}
	}
	return true
}
