// Package services owns model services: the state machine of a service
// (Next), its API (/api/v1/services: create, list, show, start, stop,
// scale, delete) and the two seams to the supervisor that runs the
// workers: Controller (told after every committed change) and Reporter
// (through which the supervisor records the actual state).
//
// It decides and records; it must never start, stop or talk to a worker
// itself, and never changes a service's state without checking the
// transition against Next and recording the change in the audit log in
// the same transaction.
package services
