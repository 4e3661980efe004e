package kafka

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the consumer's Prometheus metrics.
type Metrics struct {
	messages     *prometheus.CounterVec
	invalid      *prometheus.CounterVec
	deadLettered prometheus.Counter
	batches      *prometheus.CounterVec
	batchSize    prometheus.Histogram
	lag          *prometheus.GaugeVec
	commits      *prometheus.CounterVec
	assigned     prometheus.Gauge
	rebalances   prometheus.Counter
	buffered     prometheus.Gauge
}

// NewMetrics creates the consumer metrics and registers them with reg (nil
// registers nothing, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_messages_in_total", Help: "Messages fetched, by topic.",
		}, []string{"topic"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_messages_invalid_total", Help: "Messages that failed decoding or validation, by topic and reason.",
		}, []string{"topic", "reason"}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_dead_lettered_total", Help: "Messages written to the dead-letter topic.",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_batches_total", Help: "Batches handed to the processor, by topic.",
		}, []string{"topic"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custos_batch_messages", Help: "Messages per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "custos_consumer_lag", Help: "Messages behind the partition's high-water mark.",
		}, []string{"topic", "partition"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_offset_commits_total", Help: "Offset commits, by result.",
		}, []string{"result"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "custos_partitions_assigned", Help: "Partitions currently assigned to this process.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_generations_total", Help: "Consumer group generations joined.",
		}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "custos_buffered_bytes", Help: "Bytes of messages fetched and not yet stored (bounded by the in-flight budget).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.invalid, m.deadLettered, m.batches, m.batchSize, m.lag, m.commits, m.assigned, m.rebalances, m.buffered)
	}
	return m
}
