package main

// rampart service: model services (create, list, show, start, stop,
// scale, delete). The server checks names, limits and privileges; this
// command only builds the request and shows the answer.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	serviceSynopsis       = "rampart service create|list|show|start|stop|scale|delete [NAME] [flags]"
	serviceCreateSynopsis = "rampart service create NAME --domain DOMAIN|\"*\" --model MODEL-ID --version VERSION [--replicas N] [--memory-bytes N] [--threads N] [--max-concurrent N] [--timeout-ms N] [--json] [--credentials FILE]\n\nCreates a stopped service deploying one model version; needs all on DOMAIN and read on the model. Limits not given take the server's defaults (docs/SERVICES.md)."
	serviceListSynopsis   = "rampart service list [--json] [--credentials FILE]"
	serviceShowSynopsis   = "rampart service show NAME [--json] [--credentials FILE]"
	serviceStartSynopsis  = "rampart service start NAME [--json] [--credentials FILE]"
	serviceStopSynopsis   = "rampart service stop NAME [--json] [--credentials FILE]"
	serviceScaleSynopsis  = "rampart service scale NAME --replicas N [--json] [--credentials FILE]"
	serviceDeleteSynopsis = "rampart service delete NAME [--credentials FILE]\n\nOnly a created, stopped or failed service can be deleted."
)

// serviceView is a service as the server shows it.
type serviceView struct {
	Name         string `json:"name"`
	Domain       string `json:"domain"`
	ModelID      string `json:"model_id"`
	ModelVersion string `json:"model_version"`
	Replicas     int    `json:"replicas"`
	Limits       struct {
		MemoryBytes   int64 `json:"memory_bytes"`
		Threads       int   `json:"threads"`
		MaxConcurrent int   `json:"max_concurrent"`
	} `json:"limits"`
	TimeoutMS    int64     `json:"timeout_ms"`
	DesiredState string    `json:"desired_state"`
	State        string    `json:"state"`
	StateReason  string    `json:"state_reason"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func serviceCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return runAccessSubcommand(ctx, serviceSynopsis, []accessSubcommand{
		{"create", "create a model service", serviceCreate},
		{"list", "list the services you may read", serviceList},
		{"show", "show one service", serviceShow},
		{"start", "start a service", serviceAction("start", serviceStartSynopsis)},
		{"stop", "stop a service", serviceAction("stop", serviceStopSynopsis)},
		{"scale", "change a service's replicas", serviceScale},
		{"delete", "delete a stopped service", serviceDelete},
	}, args, stdout, stderr, env)
}

func serviceCreate(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart service create", serviceCreateSynopsis, stdout)
	f.register(fs)
	domain := fs.String("domain", "", `the service's domain, or "*" for none (required)`)
	model := fs.String("model", "", "the model id (required)")
	version := fs.String("version", "", "the model version (required)")
	// Numbers are sent only when given, so the server's defaults apply.
	fs.String("replicas", "", "worker processes (default 1)")
	fs.String("memory-bytes", "", "memory per replica in bytes")
	fs.String("threads", "", "CPU threads per replica")
	fs.String("max-concurrent", "", "requests in flight per replica")
	fs.String("timeout-ms", "", "request timeout in milliseconds")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	name, done, err := parseFlagsAndArg(fs, args, "the service NAME")
	if done || err != nil {
		return err
	}
	switch {
	case *domain == "":
		return usageError(`--domain is required: a domain name, or "*" for a service without one`)
	case *model == "":
		return usageError("--model is required: the model id")
	case *version == "":
		return usageError("--version is required: the model version")
	}
	body := map[string]any{"name": name, "domain": *domain, "model_id": *model, "model_version": *version}
	limits := map[string]any{}
	var numErr error
	fs.Visit(func(fl *flag.Flag) {
		dst, key := body, strings.ReplaceAll(fl.Name, "-", "_")
		switch fl.Name {
		case "memory-bytes", "threads", "max-concurrent":
			dst = limits
		case "replicas", "timeout-ms":
		default:
			return
		}
		n, err := strconv.ParseInt(fl.Value.String(), 10, 64)
		if err != nil && numErr == nil {
			numErr = usageError("--%s %q: want a whole number", fl.Name, fl.Value.String())
		}
		dst[key] = n
	})
	if numErr != nil {
		return numErr
	}
	if len(limits) > 0 {
		body["limits"] = limits
	}
	return serviceRequest(ctx, &f, env, stdout, stderr, http.MethodPost, "/api/v1/services", body, *asJSON, "create service "+name, "Created")
}

func serviceList(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return listCommand(ctx, args, stdout, stderr, env, "rampart service list", serviceListSynopsis, "/api/v1/services", nil,
		"No services.", "NAME\tDOMAIN\tMODEL\tVERSION\tREPLICAS\tDESIRED\tSTATE\tREASON", func(s serviceView) string {
			return strings.Join([]string{s.Name, s.Domain, s.ModelID, s.ModelVersion, strconv.Itoa(s.Replicas),
				s.DesiredState, s.State, s.StateReason}, "\t")
		})
}

func serviceShow(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart service show", serviceShowSynopsis, stdout)
	f.register(fs)
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	name, done, err := parseFlagsAndArg(fs, args, "the service NAME")
	if done || err != nil {
		return err
	}
	return serviceRequest(ctx, &f, env, stdout, stderr, http.MethodGet, servicePath(name, ""), nil, *asJSON, "show service "+name, "")
}

// serviceAction is start or stop: POST .../{name}/{action}, no body.
func serviceAction(action, synopsis string) func(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
		var f clientFlags
		fs := newFlagSet("rampart service "+action, synopsis, stdout)
		f.register(fs)
		asJSON := fs.Bool("json", false, "print the server's answer as JSON")
		name, done, err := parseFlagsAndArg(fs, args, "the service NAME")
		if done || err != nil {
			return err
		}
		past := map[string]string{"start": "Started", "stop": "Stopped"}[action]
		return serviceRequest(ctx, &f, env, stdout, stderr, http.MethodPost, servicePath(name, action), nil, *asJSON,
			action+" service "+name, past)
	}
}

func serviceScale(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart service scale", serviceScaleSynopsis, stdout)
	f.register(fs)
	replicas := fs.Int("replicas", -1, "worker processes, 0 to 64 (required)")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	name, done, err := parseFlagsAndArg(fs, args, "the service NAME")
	if done || err != nil {
		return err
	}
	if *replicas < 0 {
		return usageError("--replicas is required: 0 to 64")
	}
	return serviceRequest(ctx, &f, env, stdout, stderr, http.MethodPost, servicePath(name, "scale"),
		map[string]int{"replicas": *replicas}, *asJSON, "scale service "+name, "Scaled")
}

func serviceDelete(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return deleteCommand(ctx, args, stdout, stderr, env, "rampart service delete", serviceDeleteSynopsis,
		"the service NAME", "/api/v1/services/", "delete", "service")
}

func servicePath(name, action string) string {
	p := "/api/v1/services/" + url.PathEscape(name)
	if action != "" {
		p += "/" + action
	}
	return p
}

// serviceRequest sends one request and prints the service it answers
// with: as JSON, or as "<verb> service NAME" and its details.
func serviceRequest(ctx context.Context, f *clientFlags, env func(string) (string, bool), stdout, stderr io.Writer,
	method, path string, body any, asJSON bool, what, verb string) error {
	s, err := openAccessSession(f, env, stderr)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := s.authorizedDo(ctx, method, path, body, &raw); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if asJSON {
		return writeIndentedJSON(stdout, raw)
	}
	var v serviceView
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("%s: the server's answer is not the JSON expected: %v", what, err)
	}
	if verb != "" {
		fmt.Fprintf(stdout, "%s service %s\n", verb, v.Name)
	}
	fmt.Fprintf(stdout, "name:           %s\ndomain:         %s\nmodel:          %s version %s\nstate:          %s (desired %s)",
		v.Name, v.Domain, v.ModelID, v.ModelVersion, v.State, v.DesiredState)
	if v.StateReason != "" {
		fmt.Fprintf(stdout, ": %s", v.StateReason)
	}
	fmt.Fprintf(stdout, "\nreplicas:       %d\nmemory_bytes:   %d\nthreads:        %d\nmax_concurrent: %d\ntimeout_ms:     %d\nupdated:        %s\n",
		v.Replicas, v.Limits.MemoryBytes, v.Limits.Threads, v.Limits.MaxConcurrent, v.TimeoutMS, formatTime(v.UpdatedAt))
	return nil
}
