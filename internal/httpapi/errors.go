package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// HandlerFunc is an HTTP handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// HTTPError is an error with the response it should produce. Msg and Code go
// to the client; Err is logged and never sent.
type HTTPError struct {
	Status int
	Code   string
	Msg    string
	Err    error
}

func (e *HTTPError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Msg)
}

func (e *HTTPError) Unwrap() error { return e.Err }

// Error returns an *HTTPError; err may be nil.
func Error(status int, code, msg string, err error) *HTTPError {
	return &HTTPError{Status: status, Code: code, Msg: msg, Err: err}
}

// StatusError is an error that knows its answer without its package
// importing httpapi: audit.ErrWrite answers 503 wherever it surfaces.
type StatusError interface {
	error
	HTTPStatus() (status int, code, msg string)
}

// errorBody is the wire form of every error: {"error": "...", "code": "..."}.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeError turns err into a response. Anything that is not an *HTTPError
// is an internal error: logged in full, reported to the client only by
// request id.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	id := RequestID(r.Context())
	var (
		he *HTTPError
		se StatusError
	)
	switch {
	case errors.As(err, &he):
	case errors.As(err, &se):
		status, code, msg := se.HTTPStatus()
		he = Error(status, code, msg, err)
	default:
		he = Error(http.StatusInternalServerError, "internal", "internal error (request id "+id+")", err)
	}
	if he.Status >= 500 {
		log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("request_id", id),
			slog.Int("status", he.Status), slog.String("error", err.Error()))
	} else if he.Err != nil {
		log.LogAttrs(r.Context(), slog.LevelDebug, "request refused", slog.String("request_id", id),
			slog.Int("status", he.Status), slog.String("error", he.Err.Error()))
	}
	if he.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
	}
	WriteJSON(w, he.Status, errorBody{Error: he.Msg, Code: he.Code})
}

// WriteJSON writes v as the JSON response body with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// A failed write means the client went away; nothing useful to do.
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads exactly one JSON object from the request body into v,
// refusing unknown fields, and maps every failure to a precise 4xx error.
// The body is already bounded by the route's size limit.
func DecodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return Error(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json", err)
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return Error(http.StatusBadRequest, "malformed_json", "request body must hold a single JSON value", nil)
	}
	return nil
}

func jsonError(err error) *HTTPError {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return Error(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body is larger than %d bytes", maxErr.Limit), nil)
	case errors.Is(err, io.EOF):
		return Error(http.StatusBadRequest, "malformed_json", "request body is empty; a JSON object is required", nil)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Error(http.StatusBadRequest, "malformed_json", "request body ends in the middle of a JSON value", nil)
	case errors.As(err, &syntaxErr):
		return Error(http.StatusBadRequest, "malformed_json", fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr), nil)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return Error(http.StatusBadRequest, "invalid_field", fmt.Sprintf("field %s: expected %s, got JSON %s", field, typeErr.Type, typeErr.Value), nil)
	case strings.HasPrefix(err.Error(), "json: "):
		// json reports unknown fields only as a plain error: `json: unknown field "x"`.
		return Error(http.StatusBadRequest, "malformed_json", err.Error(), nil)
	default:
		return Error(http.StatusBadRequest, "unreadable_body", "could not read the request body", err)
	}
}
