package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/rules/consent"
	"github.com/custos-privacy/custos/sinks/alertbus"
	"github.com/custos-privacy/custos/sinks/clickhouse"
	"github.com/custos-privacy/custos/sinks/writer"
)

// service is a running Custos: consumer, rules, writer and the HTTP
// endpoints, built from a Config.
type service struct {
	cfg      *Config
	log      *slog.Logger
	store    *clickhouse.Store
	pub      *alertbus.Publisher
	dlq      *kafkago.Writer
	writer   *writer.Writer
	consumer *kafka.Consumer
	// shared consumes the repartition topic (nil: repartitioning off).
	shared   *kafka.RecordConsumer
	registry *prometheus.Registry
	pipeline *pipeline
	ready    atomic.Bool
	// follow keeps the consent registry current with the subjects topic,
	// whichever process of the group stores it (kafka.FollowStatuses).
	follow func(ctx context.Context)
}

// topicSpecs lists the topics Custos uses, for creation. The repartition
// topic comes last, with the events topic's partitions (newService makes
// it with the events topic's actual count when the events topic existed
// already).
func topicSpecs(cfg *Config) []kafka.TopicSpec {
	specs := []kafka.TopicSpec{
		{Name: cfg.Kafka.EventsTopic, Partitions: cfg.Kafka.Partitions},
		{Name: cfg.Kafka.SubjectsTopic, Partitions: 1},
		{Name: cfg.Kafka.DLQTopic, Partitions: 1},
		{Name: cfg.Kafka.AlertsTopic, Partitions: 1},
	}
	if t := cfg.Kafka.Repartition(); t != "" {
		specs = append(specs, kafka.TopicSpec{Name: t, Partitions: cfg.Kafka.Partitions})
	}
	return specs
}

// newService connects to Kafka and ClickHouse, migrates the schema, loads
// the rules and the partner registry, and wires the parts. onStored, if not
// nil, observes the latency of every stored batch (for benchmarks).
func newService(ctx context.Context, cfg *Config, log *slog.Logger, onStored func(time.Duration, int)) (*service, error) {
	keyed, err := cfg.keyed()
	if err != nil {
		return nil, err
	}
	subjects := consent.New()
	engine, err := loadRules(cfg, subjects)
	if err != nil {
		return nil, err
	}
	for _, x := range engine.ExpiredExceptions(time.Now()) {
		log.Warn("expired rule exception no longer applies", "rule", x.Rule, "when", x.When, "owner", x.Owner, "expired", x.Expires.Format("2006-01-02"))
	}
	specs := topicSpecs(cfg)
	repartition := cfg.Kafka.Repartition()
	if repartition != "" {
		specs = specs[:len(specs)-1]
	}
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, specs...); err != nil {
		return nil, err
	}
	var sources, parts int
	if repartition != "" {
		if sources, parts, err = ensureRepartition(ctx, cfg, log); err != nil {
			return nil, err
		}
	}
	store, err := clickhouse.Open(ctx, clickhouse.Config{
		Addr: cfg.ClickHouse.Addr, Database: cfg.ClickHouse.Database,
		Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// Where the status follower starts, read before the seed: statuses
	// stored in between are applied twice, which changes nothing.
	followFrom, err := store.StatusOffsets(ctx, cfg.Kafka.SubjectsTopic)
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := seedConsent(ctx, store, subjects, log); err != nil {
		store.Close()
		return nil, err
	}
	s := &service{cfg: cfg, log: log, store: store, registry: prometheus.NewRegistry()}
	s.follow = func(ctx context.Context) {
		fc := kafka.FollowConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.SubjectsTopic, Start: followFrom, Limits: cfg.Limits}
		if err := kafka.FollowStatuses(ctx, fc, keyed.Clone(), func(st *event.SubjectStatus) { subjects.Apply(st) }, log); err != nil {
			log.Error("status follower stopped: consent statuses reach this process only if it holds the subjects partition", "err", err)
		}
	}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.pub = alertbus.New(cfg.Kafka.Brokers, cfg.Kafka.AlertsTopic)
	s.writer = writer.New(writer.Config{FlushRows: cfg.Sink.FlushRows, FlushInterval: cfg.Sink.FlushInterval, OnStored: onStored},
		store, s.pub, writer.NewMetrics(s.registry), log)
	s.dlq = &kafkago.Writer{
		Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.DLQTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 5 * time.Millisecond,
	}
	p := &pipeline{store: store, writer: s.writer, subjectsTopic: cfg.Kafka.SubjectsTopic, consent: subjects, log: log}
	p.engine.Store(engine)
	s.pipeline = p
	kmetrics := kafka.NewMetrics(s.registry)
	s.consumer, err = kafka.New(kafka.Config{
		Brokers: cfg.Kafka.Brokers, GroupID: cfg.Kafka.Group,
		EventsTopic: cfg.Kafka.EventsTopic, SubjectsTopic: cfg.Kafka.SubjectsTopic, DLQTopic: cfg.Kafka.DLQTopic,
		BatchSize: cfg.Kafka.BatchSize, BatchTimeout: cfg.Kafka.BatchTimeout, CommitInterval: cfg.Kafka.CommitInterval,
		Limits: cfg.Limits, MaxBufferedBytes: int64(cfg.Kafka.MaxBufferedBytes),
	}, p, keyed, s.dlq, kmetrics, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	if repartition != "" {
		p.sm = newSharedMetrics(s.registry)
		p.fwd = kafka.NewForwarder(cfg.Kafka.Brokers, repartition, parts, log)
		stage := &sharedStage{p: p, brokers: cfg.Kafka.Brokers, eventsTopic: cfg.Kafka.EventsTopic, eventsGroup: cfg.Kafka.Group,
			topic: repartition, parts: parts, sources: sources, log: log.With("component", "shared-stage")}
		s.shared, err = kafka.NewRecordConsumer(kafka.RecordConfig{
			Brokers: cfg.Kafka.Brokers, GroupID: cfg.Kafka.SharedGroup(), Topic: repartition, BatchSize: cfg.Kafka.BatchSize,
		}, stage, kmetrics, log)
		if err != nil {
			store.Close()
			return nil, err
		}
	}
	return s, nil
}

// ensureRepartition creates the repartition topic with as many partitions
// as the events topic has, and returns both counts. A repartition topic
// that exists with another count is used as it is (a group's partition
// depends on the count: never change it while Custos runs).
func ensureRepartition(ctx context.Context, cfg *Config, log *slog.Logger) (sources, parts int, err error) {
	topic := cfg.Kafka.Repartition()
	if sources, err = kafka.PartitionCount(ctx, cfg.Kafka.Brokers, cfg.Kafka.EventsTopic); err != nil {
		return 0, 0, err
	}
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, kafka.TopicSpec{Name: topic, Partitions: sources}); err != nil {
		return 0, 0, err
	}
	if parts, err = kafka.PartitionCount(ctx, cfg.Kafka.Brokers, topic); err != nil {
		return 0, 0, err
	}
	if parts != sources {
		log.Warn("the repartition topic's partition count differs from the events topic's", "topic", topic, "partitions", parts,
			"events_partitions", sources)
	}
	return sources, parts, nil
}

// seedConsent loads the stored subject statuses into the consent registry
// before any partition evaluates an event, so a restart forgets no opt-out
// or account closure.
func seedConsent(ctx context.Context, store *clickhouse.Store, subjects *consent.Registry, log *slog.Logger) error {
	start := time.Now()
	var err error
	read := 0
	changed := subjects.ApplyAll(func(yield func(*event.SubjectStatus) bool) {
		stop := errors.New("stop")
		_, err = store.SubjectStatuses(ctx, time.Time{}, func(st *event.SubjectStatus) error {
			read++
			if !yield(st) {
				return stop
			}
			return nil
		})
		if errors.Is(err, stop) {
			err = nil
		}
	})
	if err != nil {
		return fmt.Errorf("seed consent registry: %w", err)
	}
	log.Info("consent registry seeded", "statuses_read", read, "statuses", changed, "subjects", subjects.Len(),
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// run consumes until ctx ends, then drains: partitions stop fetching, the
// writer stores what it holds, offsets are committed. Repartitioning, the
// shared stage then applies what the events partitions forwarded until it
// has caught up with the repartition topic (at most sharedDrain), so
// that a stopped process leaves no contribution it forwarded unapplied.
func (s *service) run(ctx context.Context) error {
	wctx, stopWriter := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	go func() {
		s.writer.Run(wctx, 20*time.Second)
		close(writerDone)
	}()
	rctx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go s.reloadRules(rctx)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var sharedDone chan error
	sctx, stopShared := context.WithCancel(context.Background())
	defer stopShared()
	if s.shared != nil {
		sharedDone = make(chan error, 1)
		go func() {
			err := s.shared.Run(sctx)
			if err != nil {
				s.log.Error("shared stage stopped", "err", err)
				stop() // the process cannot raise the shared rules' alerts: stop it
			}
			sharedDone <- err
		}()
	}
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		s.follow(cctx)
	}()
	s.ready.Store(true)
	err := s.consumer.Run(cctx)
	stop()
	<-followDone
	s.ready.Store(false)
	if s.shared != nil {
		s.shared.Drain(sharedDrain)
		stopShared()
		if serr := <-sharedDone; err == nil && serr != nil {
			err = serr
		}
	}
	stopWriter()
	<-writerDone
	return err
}

// sharedDrain bounds how long a stopping process keeps applying the
// contributions it forwarded.
const sharedDrain = 30 * time.Second

// close releases the connections.
func (s *service) close() {
	if s.shared != nil {
		s.shared.Close()
	}
	if f, ok := s.pipeline.fwd.(*kafka.Forwarder); ok {
		f.Close()
	}
	s.dlq.Close()
	s.pub.Close()
	s.store.Close()
}

// serveHTTP serves /metrics, /healthz and /readyz on addr until ctx ends.
func (s *service) serveHTTP(ctx context.Context, addr string) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not consuming", http.StatusServiceUnavailable)
			return
		}
		if err := s.store.Ping(r.Context()); err != nil {
			http.Error(w, "clickhouse: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	s.log.Info("serving metrics and health", "addr", ln.Addr().String())
	return nil
}

// newLogger builds the structured logger from the config.
func newLogger(cfg *Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
