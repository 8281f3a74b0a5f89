package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// services implements store.Services on the model_services table
// (migration 0009).
type services struct {
	tx *sql.Tx
}

var _ store.Services = services{}

func (r services) CreateService(ctx context.Context, s store.Service) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO model_services (name, domain, model_id, model_version,
		replicas, memory_bytes, threads, max_concurrent, timeout_ms, desired_state, state, state_reason,
		created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.Name, s.Domain, s.ModelID, s.ModelVersion, s.Spec.Replicas, s.Spec.MemoryBytes, s.Spec.Threads,
		s.Spec.MaxConcurrent, s.Spec.TimeoutMS, s.DesiredState, s.State, s.StateReason, s.CreatedBy,
		formatTime(s.CreatedAt), formatTime(s.UpdatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("create service %s: %w", s.Name, store.ErrConflict)
	case isTriggerViolation(err):
		return fmt.Errorf("create service %s: domain %s: %w", s.Name, s.Domain, store.ErrNotFound)
	case isForeignKeyViolation(err):
		return fmt.Errorf("create service %s: version %s of %s: %w", s.Name, s.ModelVersion, s.ModelID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create service %s: %w", s.Name, classify(err))
	}
	return nil
}

const serviceColumns = `name, domain, model_id, model_version, replicas, memory_bytes, threads, max_concurrent,
	timeout_ms, desired_state, state, state_reason, created_by, created_at, updated_at`

func scanService(row rowScanner) (store.Service, error) {
	var (
		s                store.Service
		created, updated string
	)
	err := row.Scan(&s.Name, &s.Domain, &s.ModelID, &s.ModelVersion, &s.Spec.Replicas, &s.Spec.MemoryBytes,
		&s.Spec.Threads, &s.Spec.MaxConcurrent, &s.Spec.TimeoutMS, &s.DesiredState, &s.State, &s.StateReason,
		&s.CreatedBy, &created, &updated)
	if err != nil {
		return store.Service{}, err
	}
	if s.CreatedAt, err = parseTime("created_at", created); err != nil {
		return store.Service{}, err
	}
	s.UpdatedAt, err = parseTime("updated_at", updated)
	return s, err
}

func (r services) ServiceByName(ctx context.Context, name string) (store.Service, error) {
	s, err := scanService(r.tx.QueryRowContext(ctx, `SELECT `+serviceColumns+` FROM model_services WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Service{}, fmt.Errorf("service %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Service{}, fmt.Errorf("service %s: %w", name, classify(err))
	}
	return s, nil
}

func (r services) ListServices(ctx context.Context) ([]store.Service, error) {
	return queryAll(ctx, r.tx, "list services", scanService, `SELECT `+serviceColumns+` FROM model_services ORDER BY name`)
}

func (r services) UpdateServiceSpec(ctx context.Context, name string, spec store.ServiceSpec, at time.Time) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE model_services SET replicas = ?, memory_bytes = ?, threads = ?,
		max_concurrent = ?, timeout_ms = ?, updated_at = ? WHERE name = ?`,
		spec.Replicas, spec.MemoryBytes, spec.Threads, spec.MaxConcurrent, spec.TimeoutMS, formatTime(at), name)
	return rowsChanged(res, err, "update service "+name)
}

func (r services) SetServiceDesired(ctx context.Context, name, desired string, at time.Time) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE model_services SET desired_state = ?, updated_at = ? WHERE name = ?`,
		desired, formatTime(at), name)
	return rowsChanged(res, err, "set the desired state of service "+name)
}

func (r services) SetServiceState(ctx context.Context, name, state, reason string, at time.Time) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE model_services SET state = ?, state_reason = ?, updated_at = ? WHERE name = ?`,
		state, reason, formatTime(at), name)
	return rowsChanged(res, err, "set the state of service "+name)
}

func (r services) DeleteService(ctx context.Context, name string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM model_services WHERE name = ?`, name)
	return rowsChanged(res, err, "delete service "+name)
}
