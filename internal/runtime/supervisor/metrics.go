package supervisor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-service runtime metrics: time waiting for a worker
// slot, time in the worker, calls in flight, and worker restarts. The
// gateway adds requests by status and total latency.
type Metrics struct {
	queue, worker *prometheus.HistogramVec
	inFlight      *prometheus.GaugeVec
	restarts      *prometheus.CounterVec
}

// latencyBuckets run from 50 µs (a tiny model) to 30 s (a timeout).
var latencyBuckets = prometheus.ExponentialBucketsRange(50e-6, 30, 20)

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rampart_inference_queue_seconds",
			Help: "Time inference calls waited for a free worker slot.", Buckets: latencyBuckets}, []string{"service"}),
		worker: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rampart_inference_worker_seconds",
			Help: "Time inference calls spent in the model worker (IPC included).", Buckets: latencyBuckets}, []string{"service"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rampart_inference_in_flight",
			Help: "Inference calls in flight in the runtime."}, []string{"service"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_worker_restarts_total",
			Help: "Model workers that exited while their service was running, and were restarted."}, []string{"service"}),
	}
	reg.MustRegister(m.queue, m.worker, m.inFlight, m.restarts)
	return m
}

// serviceMetrics are one service's series, looked up once.
type serviceMetrics struct {
	queue, worker prometheus.Observer
	inFlight      prometheus.Gauge
	restarts      prometheus.Counter
}

func (m *Metrics) forService(name string) *serviceMetrics {
	return &serviceMetrics{
		queue: m.queue.WithLabelValues(name), worker: m.worker.WithLabelValues(name),
		inFlight: m.inFlight.WithLabelValues(name), restarts: m.restarts.WithLabelValues(name),
	}
}

// forget drops a deleted service's series.
func (m *Metrics) forget(name string) {
	m.queue.DeleteLabelValues(name)
	m.worker.DeleteLabelValues(name)
	m.inFlight.DeleteLabelValues(name)
	m.restarts.DeleteLabelValues(name)
}
