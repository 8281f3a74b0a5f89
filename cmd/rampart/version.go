package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/rampart-ml/rampart/internal/version"
)

func versionCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rampart version", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print as JSON")
	sbom := fs.Bool("sbom", false, "print a CycloneDX 1.6 SBOM of this binary (JSON)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *sbom {
		return version.WriteSBOM(stdout)
	}
	info := version.Get()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	fmt.Fprintf(stdout, "rampart %s\ncommit  %s\ngo      %s\n", info.Version, info.Commit, info.GoVersion)
	if len(info.Modules) > 0 {
		fmt.Fprintln(stdout, "dependencies:")
		for _, m := range info.Modules {
			fmt.Fprintf(stdout, "  %s %s\n", m.Path, m.Version)
		}
	}
	return nil
}
