package services

import (
	"errors"
	"fmt"
)

// State is the actual state of a service, as the supervisor last reported
// it (or as the API left it).
type State string

// The states. A service is created stopped; start asks the supervisor to
// bring it up (starting → ready), stop to drain it (stopping → stopped).
// failed carries a reason and is left by start (or by stop, which gives
// up on it).
const (
	Created  State = "created"
	Starting State = "starting"
	Ready    State = "ready"
	Stopping State = "stopping"
	Stopped  State = "stopped"
	Failed   State = "failed"
)

// States returns every state in lifecycle order.
func States() []State { return []State{Created, Starting, Ready, Stopping, Stopped, Failed} }

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	switch s {
	case Created, Starting, Ready, Stopping, Stopped, Failed:
		return true
	}
	return false
}

// Deletable reports whether a service in state s may be deleted: only
// when no worker of it can be running.
func (s State) Deletable() bool { return s == Created || s == Stopped || s == Failed }

// Event is what moves a service from one state to another.
type Event string

// The events. Start and Stop come from the API; Up, Down and Fail from
// the supervisor.
const (
	Start Event = "start" // a user asked for the service to run
	Up    Event = "up"    // every replica passed its health check
	Stop  Event = "stop"  // a user asked for the service to stop
	Down  Event = "down"  // the last worker has exited after draining
	Fail  Event = "fail"  // a worker could not start or keeps crashing
	// Resume: the server restarted and starts the workers of a service
	// that was ready again; until they are up it is starting, not ready.
	Resume Event = "resume"
)

// Events returns every event.
func Events() []Event { return []Event{Start, Up, Stop, Down, Fail, Resume} }

// ErrTransition: the event is not allowed in the current state.
var ErrTransition = errors.New("transition not allowed")

// transitions is the whole state machine: from → event → to. Anything
// missing is refused. Fail is allowed from every state (a worker can die
// at any time, and a stopped service that fails to be recorded as such is
// still worth knowing about); Stop on a failed service gives up on it
// without draining, since nothing of it runs.
var transitions = map[State]map[Event]State{
	Created:  {Start: Starting, Fail: Failed},
	Starting: {Up: Ready, Stop: Stopping, Fail: Failed},
	Ready:    {Stop: Stopping, Fail: Failed, Resume: Starting},
	Stopping: {Down: Stopped, Fail: Failed},
	Stopped:  {Start: Starting, Fail: Failed},
	Failed:   {Start: Starting, Stop: Stopped, Fail: Failed},
}

// Next returns the state that event e leads to from s, or an error
// wrapping ErrTransition when e is not allowed in s (and for unknown
// states or events).
func Next(s State, e Event) (State, error) {
	to, ok := transitions[s][e]
	if !ok {
		return s, fmt.Errorf("%w: %q in state %q", ErrTransition, e, s)
	}
	return to, nil
}
