package app

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/inference/gateway"
	"github.com/rampart-ml/rampart/internal/runtime/onnx"
	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
	"github.com/rampart-ml/rampart/internal/runtime/supervisor"
	"github.com/rampart-ml/rampart/internal/runtime/worker"
	"github.com/rampart-ml/rampart/internal/services"
	"github.com/rampart-ml/rampart/internal/version"
)

// maxRateKeys bounds the callers and services the rate limiters track.
const maxRateKeys = 100_000

// mountRuntime builds the supervisor of model services, mounts the
// services API (the supervisor is its Controller) and the inference
// gateway (/v2 REST and gRPC).
func (a *App) mountRuntime(reg prometheus.Registerer) error {
	in := a.cfg.Inference
	lib := in.RuntimeLibrary
	if lib == "" {
		lib = onnx.LibraryPath()
	}
	if _, err := os.Stat(lib); err != nil {
		a.log.Warn("the ONNX Runtime library is missing: model services will fail to start until it is installed (make onnxruntime, or --onnxruntime-lib)",
			"path", lib)
	}
	if !worker.Supported() {
		a.log.Warn("this program cannot start model workers (it does not call worker.Main): model services will fail to start")
	}
	uid, gid, err := config.ParseWorkerUser(in.WorkerUser)
	if err != nil {
		return err
	}
	report := sandbox.Probe()
	a.log.Info("model worker sandbox", "features", report.String())
	a.supervisor, err = supervisor.New(supervisor.Options{
		Store: a.store, Loader: a.loader, Recorder: a.recorder,
		Reporter:    services.NewReporter(services.ReporterOptions{Store: a.store, Recorder: a.recorder}),
		RunDir:      a.dir.Path(datadir.RunDir),
		LibraryPath: lib,
		Sandbox:     sandbox.Options{UID: int(uid), GID: int(gid)},
		Log:         a.log,
		Metrics:     supervisor.NewMetrics(reg),
	})
	if err != nil {
		return err
	}
	var ctl services.Controller = a.supervisor
	if a.opts.noRuntime {
		ctl = nil
	}
	services.NewAPI(services.Options{Store: a.store, Authz: a.authz, Recorder: a.recorder, Controller: ctl}).Mount(a.api)
	gw, err := gateway.New(gateway.Options{
		Services: a.supervisor, Authz: a.authz, Recorder: a.recorder, Sampler: a.sampler,
		Limits:        inference.Limits{MaxBodyBytes: in.MaxRequestBytes, MaxElements: in.MaxElements},
		PrincipalRate: gateway.RatePolicy(in.PrincipalRate, in.PrincipalBurst, maxRateKeys),
		ServiceRate:   gateway.RatePolicy(in.ServiceRate, in.ServiceBurst, maxRateKeys),
		Registerer:    reg, ServerName: "rampart", ServerVersion: version.Version,
	})
	if err != nil {
		return fmt.Errorf("inference gateway: %w", err)
	}
	return gw.Mount(a.api)
}

// startRuntime starts the supervisor: services that were running before
// come back.
func (a *App) startRuntime(ctx context.Context) error {
	return a.supervisor.Run(ctx)
}

// Supervisor is the model services' supervisor (for tests).
func (a *App) Supervisor() *supervisor.Supervisor { return a.supervisor }
