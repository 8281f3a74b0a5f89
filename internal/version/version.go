// Package version reports what this binary is: its release version, source
// commit, Go version and the module versions it was built from.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set at build time with -ldflags "-X github.com/rampart-ml/rampart/internal/version.Version=...".
var (
	Version = "dev"
	Commit  = "unknown"
)

// Module is one dependency compiled into the binary.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Sum     string `json:"sum,omitempty"`
}

// Info describes the running binary.
type Info struct {
	Version   string   `json:"version"`
	Commit    string   `json:"commit"`
	GoVersion string   `json:"go_version"`
	Modules   []Module `json:"modules"`
}

// Get returns the build information of the running binary.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && info.Commit == "unknown" {
			info.Commit = s.Value
		}
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		info.Modules = append(info.Modules, Module{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	return info
}
