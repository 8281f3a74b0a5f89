// Package supervisor keeps the workers of model services in the state the
// services API asked for: it verifies and materialises the model version
// (registry.Loader: the digests and signature of exactly the bytes the
// worker gets), starts one sandboxed worker process per replica, checks
// their health, restarts a crashed or hung worker with back-off, drains
// before stopping, and reports the actual state (services.Reporter).
//
// It is also the inference path's way to a worker: Lookup returns a
// Service whose Infer picks a replica with a free slot, bounds the call by
// the service's timeout, and kills a worker that does not answer in time.
//
// Desired state lives in the store, so a restarted server brings back the
// services that were running: Run reconciles every service at start.
package supervisor
