package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
)

// DefaultSampleRate is the share of allowed inference calls recorded
// (1 %). Every denial is recorded whatever the rate.
const DefaultSampleRate = 0.01

// Sampler decides which allowed inference calls are recorded, and counts
// every call per service so the totals stay exact: each recorded call
// carries how many calls it stands for, and Flush returns those not yet
// represented by a record. It is safe for concurrent use and cheap on the
// hot path: no lock and no allocation for a service it has seen. Each
// service name is kept until the Sampler is dropped, so call Allowed only
// for services that exist, never with a name taken from a request as is.
type Sampler struct {
	rate float64
	rnd  func() float64

	// services maps a service to its counters. It is copied on write (a
	// new service is rare), so lookups are a load and a map read.
	services atomic.Pointer[map[string]*serviceCount]
	mu       sync.Mutex // serialises writers of services
}

// serviceCount holds one service's counters, padded to a cache line so
// busy services do not slow each other down.
type serviceCount struct {
	total   atomic.Uint64 // every allowed call
	pending atomic.Uint64 // calls not yet represented by a record
	_       [48]byte
}

// NewSampler returns a Sampler recording allowed calls at rate (in [0,
// 1]: 1 records every call, 0 none but still counts them). rnd returns
// numbers in [0, 1); nil uses math/rand/v2 (tests inject their own).
func NewSampler(rate float64, rnd func() float64) (*Sampler, error) {
	if math.IsNaN(rate) || rate < 0 || rate > 1 {
		return nil, fmt.Errorf("audit sample rate %v: must be between 0 and 1", rate)
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	s := &Sampler{rate: rate, rnd: rnd}
	s.services.Store(&map[string]*serviceCount{})
	return s, nil
}

// Rate returns the sampling rate.
func (s *Sampler) Rate() float64 { return s.rate }

// Allowed counts an allowed call to service and says whether to record
// it. When it does, represents is the number of calls the record stands
// for: this one and those since the previous record of the service that
// were not recorded. The sum of represents over the records, plus what
// Flush returns, is exactly the number of calls.
func (s *Sampler) Allowed(service string) (record bool, represents uint64) {
	c := s.count(service)
	c.total.Add(1)
	if s.rate < 1 && (s.rate == 0 || s.rnd() >= s.rate) {
		c.pending.Add(1)
		return false, 0
	}
	// Calls counted concurrently with this one are taken by it or by the
	// next record: each exactly once.
	return true, c.pending.Swap(0) + 1
}

// Flush returns, per service, the calls not represented by any record
// and starts counting them again from zero: the server records them as a
// summary at shutdown. Services with none are left out.
func (s *Sampler) Flush() map[string]uint64 {
	out := map[string]uint64{}
	for name, c := range *s.services.Load() {
		if n := c.pending.Swap(0); n > 0 {
			out[name] = n
		}
	}
	return out
}

// Totals returns the exact number of allowed calls per service.
func (s *Sampler) Totals() map[string]uint64 {
	out := map[string]uint64{}
	for name, c := range *s.services.Load() {
		out[name] = c.total.Load()
	}
	return out
}

// refused undoes a sampled call whose record could not be taken: the
// call is refused, so it leaves the total, and the calls its record would
// have stood for wait for the next one.
func (s *Sampler) refused(service string, represents uint64) {
	c := s.count(service)
	c.total.Add(^uint64(0)) // minus one
	c.pending.Add(represents - 1)
}

// unflushed puts back calls a summary record could not carry.
func (s *Sampler) unflushed(service string, n uint64) { s.count(service).pending.Add(n) }

// count returns the counters of service, adding them on its first call.
func (s *Sampler) count(service string) *serviceCount {
	if c, ok := (*s.services.Load())[service]; ok {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.services.Load()
	if c, ok := old[service]; ok {
		return c
	}
	next := make(map[string]*serviceCount, len(old)+1)
	maps.Copy(next, old)
	c := &serviceCount{}
	next[service] = c
	s.services.Store(&next)
	return c
}

// Inference actions.
const (
	// ActionInferenceAllow is a sampled allowed call; its reason is
	// "calls=N", the allowed calls to the service it stands for.
	ActionInferenceAllow = "inference.allow"
	// ActionInferenceSummary records, at shutdown, the allowed calls no
	// sampled record stands for, so the records' counts add up exactly.
	ActionInferenceSummary = "inference.summary"
)

// RecordAllowedInference counts an allowed inference call to service and,
// when the sampler picks it, queues its record (Submit): the caller
// refuses the call if that fails, and the call is then not counted.
// Denied calls are not sampled: record each one (Submit an "access.deny").
func (r *Recorder) RecordAllowedInference(ctx context.Context, s *Sampler, service Target) error {
	record, n := s.Allowed(service.ID)
	if !record {
		return nil
	}
	err := r.Submit(ctx, Entry{Action: ActionInferenceAllow, Target: service, Reason: "calls=" + strconv.FormatUint(n, 10)})
	if err != nil {
		s.refused(service.ID, n)
	}
	return err
}

// RecordInferenceSummary writes, for each service (target kind "service"),
// the allowed calls that no sampled record stands for (Sampler.Flush), as
// the system actor "inference". Call it at shutdown, before Close.
func (r *Recorder) RecordInferenceSummary(ctx context.Context, s *Sampler) error {
	var errs []error
	for service, n := range s.Flush() {
		err := r.Write(ctx, Entry{
			Action: ActionInferenceSummary, Target: Target{Kind: "service", ID: service},
			Reason: "calls=" + strconv.FormatUint(n, 10), Actor: &Actor{ID: "inference", Kind: ActorSystem},
		})
		if err != nil {
			s.unflushed(service, n)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
