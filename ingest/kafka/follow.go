package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/pseudonym"
)

// FollowConfig says which topic a status follower reads, and from where.
type FollowConfig struct {
	// Brokers are the bootstrap brokers.
	Brokers []string
	// Topic is the subjects topic.
	Topic string
	// Start is, per partition, the first offset to read; a partition it
	// does not name is read from its first offset.
	Start map[int32]int64
	// Limits bounds decoding (event.DefaultLimits when zero).
	Limits event.Limits
}

// FollowStatuses reads every partition of the subjects topic outside any
// consumer group, decodes each status, pseudonymises its subject id and
// hands it to apply, until ctx ends. Each process of a consumer group
// holds its own consent registry, but the group gives the subjects topic
// to one of them (the one that stores the statuses): following the topic
// keeps every process's registry current, like a Kafka Streams global
// table. Applying a status twice changes nothing, so the process that
// also consumes the topic through the group may apply it twice.
//
// Invalid messages are skipped here (the group's consumer dead-letters
// them). Listing the topic's partitions and reading are retried with
// backoff (a topic created a moment ago may not be known to every broker
// yet); FollowStatuses returns only when ctx ends.
func FollowStatuses(ctx context.Context, cfg FollowConfig, keyed *pseudonym.Keyed, apply func(*event.SubjectStatus), log *slog.Logger) error {
	if cfg.Limits == (event.Limits{}) {
		cfg.Limits = event.DefaultLimits()
	}
	var parts []int32
	for backoff := 250 * time.Millisecond; ; backoff = min(backoff*2, 10*time.Second) {
		var err error
		if parts, err = partitionsOf(ctx, cfg.Brokers, cfg.Topic); err == nil {
			break
		}
		log.Warn("status follower: cannot list the topic's partitions; retrying", "topic", cfg.Topic, "err", err, "backoff", backoff)
		if !sleepCtx(ctx, backoff) {
			return fmt.Errorf("follow %s: %w", cfg.Topic, ctx.Err())
		}
	}
	var mu sync.Mutex // apply is called from one goroutine at a time
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			followPartition(ctx, cfg, p, keyed.Clone(), func(s *event.SubjectStatus) {
				mu.Lock()
				defer mu.Unlock()
				apply(s)
			}, log.With("topic", cfg.Topic, "partition", p))
		}()
	}
	wg.Wait()
	return nil
}

func followPartition(ctx context.Context, cfg FollowConfig, partition int32, keyed *pseudonym.Keyed, apply func(*event.SubjectStatus), log *slog.Logger) {
	start, ok := cfg.Start[partition]
	if !ok {
		start = kafkago.FirstOffset
	}
	dec := event.NewDecoder(cfg.Limits)
	var hdrs []event.Header
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers: cfg.Brokers, Topic: cfg.Topic, Partition: int(partition),
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 500 * time.Millisecond,
		})
		if err := r.SetOffset(start); err != nil {
			_ = r.Close()
			log.Warn("status follower: seek failed", "offset", start, "err", err)
			if !sleepCtx(ctx, backoff) {
				return
			}
			continue
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				if ctx.Err() != nil || errors.Is(err, context.Canceled) {
					return
				}
				log.Warn("status follower: read failed; retrying", "offset", start, "err", err, "backoff", backoff)
				if !sleepCtx(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, 10*time.Second)
				break
			}
			backoff = 250 * time.Millisecond
			start = m.Offset + 1
			var s event.SubjectStatus
			hdrs = convertHeaders(hdrs[:0], m.Headers)
			if dec.DecodeSubjectStatus(m.Value, hdrs, &s) != nil {
				continue
			}
			s.Subject = keyed.Subject(s.Subject)
			s.Origin = event.Origin{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset}
			apply(&s)
		}
	}
}

// partitionsOf lists the partitions of topic. It asks through a transport
// of its own: kafka-go's default transport answers metadata requests from
// a process-wide cache refreshed every few seconds, which does not know a
// topic created since.
func partitionsOf(ctx context.Context, brokers []string, topic string) ([]int32, error) {
	client, done := adminClient(brokers)
	defer done()
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		out := make([]int32, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			out = append(out, int32(p.ID))
		}
		return out, nil
	}
	return nil, fmt.Errorf("topic %s not found", topic)
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
