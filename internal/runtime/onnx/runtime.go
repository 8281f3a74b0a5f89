package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Version is the ONNX Runtime release the binding is built for; Init refuses
// a library of any other version.
const Version = "1.24.1"

// LibraryEnv names the environment variable that overrides LibraryPath.
const LibraryEnv = "RAMPART_ONNXRUNTIME_LIB"

// Errors; match them with errors.Is.
var (
	// ErrLibrary: the ORT shared library is missing, unloadable or of the
	// wrong version.
	ErrLibrary = errors.New("onnx runtime library")
	// ErrNotInitialized: Open was called before a successful Init.
	ErrNotInitialized = errors.New("onnx runtime not initialized (call onnx.Init first)")
	// ErrUnsupported: the model or a tensor uses something this engine
	// cannot pass through the binding (see the package doc of Run).
	ErrUnsupported = errors.New("not supported by the onnx engine")
	// ErrInput: a Run input does not match the model (name, datatype,
	// shape, size, duplicates, missing inputs).
	ErrInput = errors.New("invalid input")
	// ErrOutput: a requested output name is not one of the model's.
	ErrOutput = errors.New("unknown output")
	// ErrClosed: the session was closed.
	ErrClosed = errors.New("onnx session closed")
)

// LibraryPath is where the ORT library is expected: $RAMPART_ONNXRUNTIME_LIB
// when set, else the path scripts/fetch-onnxruntime.sh installs it to,
// ${RAMPART_CACHE:-$HOME/.cache/rampart}/onnxruntime/1.24.1/libonnxruntime.so.1.
// A command-line flag, where there is one, takes precedence over both.
func LibraryPath() string {
	if p := os.Getenv(LibraryEnv); p != "" {
		return p
	}
	cache := os.Getenv("RAMPART_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			// Without a home there is no default; Init names the problem.
			return ""
		}
		cache = filepath.Join(home, ".cache", "rampart")
	}
	return filepath.Join(cache, "onnxruntime", Version, "libonnxruntime.so.1")
}

// The ORT environment is process-wide state in the binding.
var env struct {
	mu      sync.Mutex
	libPath string // set once Init succeeded
}

// Init loads the ORT shared library at libPath and creates the process's ORT
// environment. Call it once, before Open; calling it again with the same path
// is a no-op, with another path an error (a process cannot load two ORTs).
// A failed Init may be retried.
func Init(libPath string) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.libPath != "" {
		if env.libPath == libPath {
			return nil
		}
		return fmt.Errorf("%w: already initialized from %s, cannot switch to %s", ErrLibrary, env.libPath, libPath)
	}
	if !littleEndian() {
		return fmt.Errorf("%w: tensors are passed in place, which needs a little-endian host", ErrUnsupported)
	}
	if libPath == "" {
		return fmt.Errorf("%w: no library path (set %s or run scripts/fetch-onnxruntime.sh)", ErrLibrary, LibraryEnv)
	}
	fi, err := os.Stat(libPath)
	if err != nil {
		return fmt.Errorf("%w: %w (run scripts/fetch-onnxruntime.sh or set %s)", ErrLibrary, err, LibraryEnv)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrLibrary, libPath)
	}
	ort.SetSharedLibraryPath(libPath)
	// ORT would log failed runs to stderr itself; they are returned as
	// errors, and the caller logs them (structured, with a request id).
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		// The binding fails here too when the library's API is older than
		// the one it was built for.
		return fmt.Errorf("%w: load %s (ONNX Runtime %s required): %w", ErrLibrary, libPath, Version, err)
	}
	// A newer library also offers the binding's API version; refuse it
	// anyway: only the pinned pairing is tested.
	if v := ort.GetVersion(); v != Version {
		_ = ort.DestroyEnvironment()
		return fmt.Errorf("%w: %s is ONNX Runtime %s, need %s", ErrLibrary, libPath, v, Version)
	}
	env.libPath = libPath
	return nil
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func initialized() bool {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.libPath != ""
}
