package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
	"github.com/rampart-ml/rampart/internal/runtime/worker"
	"github.com/rampart-ml/rampart/internal/services"
	"github.com/rampart-ml/rampart/internal/store"
)

// ActionWorkerExit is the audit action of a worker that exited while its
// service was running (a crash, a kill after a timeout or failed health
// check); the supervisor restarts it.
const ActionWorkerExit = "service.worker_exit"

// actor is the system actor of the supervisor's records.
var actor = &audit.Actor{ID: "supervisor", Kind: audit.ActorSystem}

// Options configure a Supervisor.
type Options struct {
	Store    store.Store
	Loader   *registry.Loader
	Reporter *services.Reporter
	Recorder *audit.Recorder
	// RunDir is a private directory (0700) the verified models are
	// materialised in, one fresh directory per started service; it is
	// emptied at start.
	RunDir string
	// LibraryPath is the ONNX Runtime library the workers load.
	LibraryPath string
	// Sandbox is the workers' sandbox (UID/GID used when running as root).
	Sandbox sandbox.Options
	// HealthInterval between pings of each worker (default 5s).
	HealthInterval time.Duration
	Log            *slog.Logger
	Metrics        *Metrics
}

// Supervisor implements services.Controller.
type Supervisor struct {
	opt Options
	log *slog.Logger

	services atomic.Pointer[map[string]*Service] // copy-on-write; read by every inference call

	mu    sync.Mutex
	dirty map[string]bool
	kick  chan struct{}

	events chan replicaEvent
	ctl    map[string]*control // owned by the loop goroutine

	cancel context.CancelFunc
	done   chan struct{}
}

var _ services.Controller = (*Supervisor)(nil)

// control is the loop's record of a started service.
type control struct {
	svc      *Service
	rt       *running
	dir      string
	spec     store.ServiceSpec
	worker   worker.Spec
	replicas []*replica
	cancels  []context.CancelFunc
}

// New returns a Supervisor; Run starts it.
func New(o Options) (*Supervisor, error) {
	if o.Store == nil || o.Loader == nil || o.Reporter == nil || o.Recorder == nil || o.RunDir == "" || o.Metrics == nil {
		return nil, errors.New("supervisor: store, loader, reporter, recorder, run directory and metrics are required")
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if err := emptyDir(o.RunDir); err != nil {
		return nil, err
	}
	s := &Supervisor{
		opt: o, log: o.Log.With(slog.String("component", "supervisor")),
		dirty: map[string]bool{}, kick: make(chan struct{}, 1),
		events: make(chan replicaEvent, 64), ctl: map[string]*control{},
		done: make(chan struct{}),
	}
	s.services.Store(&map[string]*Service{})
	return s, nil
}

// emptyDir creates dir 0700 or removes what a previous run left in it
// (models of services that were running when the server died).
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("supervisor run directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("supervisor run directory: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("supervisor run directory: %w", err)
		}
	}
	return nil
}

// Run starts the control loop and reconciles every service (those that
// were running before a restart come back). It returns at once.
func (s *Supervisor) Run(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var all []store.Service
	if err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.Services().ListServices(ctx)
		return err
	}); err != nil {
		s.cancel()
		return fmt.Errorf("supervisor: list services: %w", err)
	}
	for _, svc := range all {
		s.Reconcile(svc.Name)
	}
	go s.loop(ctx)
	return nil
}

// Close stops every worker (draining first) without changing any desired
// state, so a restarted server brings the same services back.
func (s *Supervisor) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

// Reconcile implements services.Controller: it never blocks.
func (s *Supervisor) Reconcile(name string) {
	s.mu.Lock()
	s.dirty[name] = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Lookup returns the service named name, running or not.
func (s *Supervisor) Lookup(name string) (*Service, bool) {
	svc, ok := (*s.services.Load())[name]
	return svc, ok
}

func (s *Supervisor) loop(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			for _, c := range s.ctl {
				s.stopService(c)
			}
			return
		case <-s.kick:
			s.mu.Lock()
			names := s.dirty
			s.dirty = map[string]bool{}
			s.mu.Unlock()
			for name := range names {
				s.reconcile(ctx, name)
			}
		case ev := <-s.events:
			s.handle(ctx, ev)
		}
	}
}

// reconcile brings one service to its desired state.
func (s *Supervisor) reconcile(ctx context.Context, name string) {
	var rec store.Service
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.Services().ServiceByName(ctx, name)
		return err
	})
	c := s.ctl[name]
	if errors.Is(err, store.ErrNotFound) {
		if c != nil {
			s.stopService(c)
		}
		s.forget(name)
		return
	}
	if err != nil {
		s.log.Error("read service", slog.String("service", name), slog.String("error", err.Error()))
		return
	}
	if old, ok := s.Lookup(name); ok && (old.Domain != rec.Domain || old.ModelID != rec.ModelID || old.ModelVersion != rec.ModelVersion) {
		// A service's domain and model never change: this is another
		// service of the same name (deleted and created again before this
		// reconcile). Forget the old one entirely, or calls would be
		// authorised against its domain.
		if c != nil {
			s.stopService(c)
			c = nil
		}
		s.forget(name)
	}
	svc := s.remember(rec)
	state := services.State(rec.State)
	run := rec.DesiredState == store.ServiceRunning && (state == services.Starting || state == services.Ready)
	switch {
	case run && c == nil:
		s.startService(ctx, svc, rec)
	case run:
		s.scale(ctx, c, rec.Spec.Replicas)
	case c != nil:
		s.stopService(c)
		if state == services.Stopping {
			s.report(ctx, name, services.Down, "")
		}
	case state == services.Stopping:
		s.report(ctx, name, services.Down, "")
	}
}

// remember adds or refreshes the inference path's view of a service.
func (s *Supervisor) remember(rec store.Service) *Service {
	old := *s.services.Load()
	if svc, ok := old[rec.Name]; ok {
		return svc
	}
	svc := &Service{Name: rec.Name, Domain: rec.Domain, ModelID: rec.ModelID, ModelVersion: rec.ModelVersion,
		m: s.opt.Metrics.forService(rec.Name)}
	next := make(map[string]*Service, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[rec.Name] = svc
	s.services.Store(&next)
	return svc
}

func (s *Supervisor) forget(name string) {
	old := *s.services.Load()
	if _, ok := old[name]; !ok {
		return
	}
	next := make(map[string]*Service, len(old))
	for k, v := range old {
		if k != name {
			next[k] = v
		}
	}
	s.services.Store(&next)
	s.opt.Metrics.forget(name)
}

// startService verifies and materialises the model, then starts the
// replicas; the service is published once a worker has said hello.
func (s *Supervisor) startService(ctx context.Context, svc *Service, rec store.Service) {
	log := s.log.With(slog.String("service", rec.Name))
	if services.State(rec.State) == services.Ready {
		// Ready in the store but nothing runs: the server restarted. Say
		// so until the workers are up again.
		s.report(ctx, rec.Name, services.Resume, "")
	}
	dir, err := s.newRunDir(rec.Name)
	if err != nil {
		log.Error("create model directory", slog.String("error", err.Error()))
		s.report(ctx, rec.Name, services.Fail, "the server could not create the model's directory")
		return
	}
	loaded, err := s.opt.Loader.Materialize(ctx, rec.ModelID, rec.ModelVersion, dir)
	if err != nil {
		log.Error("model version not loaded", slog.String("error", err.Error()))
		s.report(ctx, rec.Name, services.Fail, "model version not loaded: "+err.Error())
		return
	}
	if err := shareWithWorkers(dir, s.opt.Sandbox); err != nil {
		_ = os.RemoveAll(dir)
		log.Error("share model directory with workers", slog.String("error", err.Error()))
		s.report(ctx, rec.Name, services.Fail, "the server could not prepare the model's directory")
		return
	}
	spec := worker.Spec{
		ModelDir: filepath.Dir(loaded.ModelFile), ModelFile: filepath.Base(loaded.ModelFile),
		LibraryPath: s.opt.LibraryPath, Threads: rec.Spec.Threads, MaxConcurrent: rec.Spec.MaxConcurrent,
		MemoryBytes: rec.Spec.MemoryBytes, Sandbox: s.opt.Sandbox,
	}
	c := &control{svc: svc, dir: dir, spec: rec.Spec,
		rt: &running{timeout: time.Duration(rec.Spec.TimeoutMS) * time.Millisecond}}
	c.rt.replicas.Store(&[]*replica{})
	s.ctl[rec.Name] = c
	c.worker = spec
	c.addReplicas(ctx, s, rec.Spec.Replicas)
	if rec.Spec.Replicas == 0 {
		// Nothing to wait for: running, with no capacity.
		s.report(ctx, rec.Name, services.Up, "")
	}
	log.Info("model service starting", slog.String("model", rec.ModelID), slog.String("version", rec.ModelVersion),
		slog.Int("replicas", rec.Spec.Replicas))
}

// addReplicas starts n more replicas.
func (c *control) addReplicas(ctx context.Context, s *Supervisor, n int) {
	spec := c.worker
	rs := append([]*replica(nil), *c.rt.replicas.Load()...)
	for range n {
		r := &replica{svc: c.svc, index: len(c.replicas), spec: spec,
			slots: make(chan struct{}, max(spec.MaxConcurrent, 1)), done: make(chan struct{})}
		rctx, cancel := context.WithCancel(ctx)
		c.replicas = append(c.replicas, r)
		c.cancels = append(c.cancels, cancel)
		rs = append(rs, r)
		go r.run(rctx, s, s.events)
	}
	c.rt.replicas.Store(&rs)
}

// scale starts or stops replicas to have n.
func (s *Supervisor) scale(ctx context.Context, c *control, n int) {
	have := len(c.replicas)
	switch {
	case n > have:
		c.addReplicas(ctx, s, n-have)
	case n < have:
		gone, cancels := c.replicas[n:], c.cancels[n:]
		c.replicas, c.cancels = c.replicas[:n:n], c.cancels[:n:n]
		rs := append([]*replica(nil), c.replicas...)
		c.rt.replicas.Store(&rs)
		for i, r := range gone {
			cancels[i]()
			<-r.done
		}
	}
	if n != have {
		s.log.Info("model service scaled", slog.String("service", c.svc.Name), slog.Int("from", have), slog.Int("to", n))
	}
}

// stopService drains the service (at most its timeout), stops its
// workers and removes its model directory.
func (s *Supervisor) stopService(c *control) {
	c.rt.drain(c.rt.timeout)
	for i, r := range c.replicas {
		c.cancels[i]()
		<-r.done
	}
	c.svc.rt.CompareAndSwap(c.rt, nil)
	if err := os.RemoveAll(c.dir); err != nil {
		s.log.Error("remove model directory", slog.String("service", c.svc.Name), slog.String("error", err.Error()))
	}
	delete(s.ctl, c.svc.Name)
	s.log.Info("model service stopped", slog.String("service", c.svc.Name))
}

// handle applies a replica's event.
func (s *Supervisor) handle(ctx context.Context, ev replicaEvent) {
	c := s.ctl[ev.r.svc.Name]
	if c == nil || !c.has(ev.r) {
		return // a replica of a service stopped since
	}
	switch {
	case ev.failed != "":
		s.stopService(c)
		s.report(ctx, c.svc.Name, services.Fail, ev.failed)
	case ev.up && c.svc.rt.Load() != c.rt:
		c.rt.sig = signatureOf(ev.hello)
		c.svc.rt.Store(c.rt)
		s.report(ctx, c.svc.Name, services.Up, "")
		s.log.Info("model service ready", slog.String("service", c.svc.Name))
	}
}

func (c *control) has(r *replica) bool {
	for _, x := range c.replicas {
		if x == r {
			return true
		}
	}
	return false
}

// report records the service's actual state; a report that no longer
// fits (the service changed meanwhile) is dropped: the change that
// caused it is reconciled next.
func (s *Supervisor) report(ctx context.Context, name string, e services.Event, reason string) {
	_, err := s.opt.Reporter.Report(ctx, name, e, reason)
	if err != nil && !errors.Is(err, services.ErrTransition) && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("report service state", slog.String("service", name), slog.String("event", string(e)),
			slog.String("error", err.Error()))
	}
}

// workerExited counts and records a worker that exited while its service
// ran.
func (s *Supervisor) workerExited(svc *Service, index int, p *worker.Process) {
	svc.m.restarts.Inc()
	reason := "exited"
	if err := p.Wait(); err != nil {
		reason = err.Error()
	}
	s.log.Warn("model worker exited; restarting it", slog.String("service", svc.Name), slog.Int("replica", index),
		slog.String("reason", reason))
	err := s.opt.Recorder.Submit(context.Background(), audit.Entry{
		Action: ActionWorkerExit, Outcome: audit.OutcomeFailure, Reason: reason, Actor: actor,
		Target: audit.Target{Kind: string(access.ModelService), Domain: svc.Domain, ID: svc.Name},
	})
	if err != nil {
		s.log.Error("audit worker exit", slog.String("service", svc.Name), slog.String("error", err.Error()))
	}
}

// newRunDir names a fresh directory for one start of a service (the
// loader creates it).
func (s *Supervisor) newRunDir(name string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return filepath.Join(s.opt.RunDir, name+"-"+hex.EncodeToString(b[:])), nil
}

// shareWithWorkers lets the workers' own group read the model directory
// when the server runs as root (the loader leaves it 0700/0400, owner
// only); the files stay owned by the server, so a worker cannot change
// them.
func shareWithWorkers(dir string, o sandbox.Options) error {
	if os.Geteuid() != 0 {
		return nil // workers run as the server's own user
	}
	gid := o.GID
	if gid == 0 {
		gid = sandbox.NobodyID
	}
	// Through an os.Root: no path walked can lead outside dir, even if
	// something swapped a directory for a link during the walk.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("unexpected symbolic link %s", p)
		}
		mode := fs.FileMode(0o440)
		if d.IsDir() {
			mode = 0o550
		}
		if err := root.Lchown(p, 0, gid); err != nil {
			return err
		}
		return root.Chmod(p, mode)
	})
}
