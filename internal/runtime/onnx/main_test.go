package onnx

import (
	"fmt"
	"os"
	"testing"
)

// initEnv makes the test binary a helper process that calls Init with the
// variable's value and prints the outcome, so that Init's failures can be
// tested in a process whose ORT environment is still fresh.
const initEnv = "RAMPART_ONNX_TEST_INIT"

func TestMain(m *testing.M) {
	if p, ok := os.LookupEnv(initEnv); ok {
		fmt.Printf("Init: %v\n", Init(p))
		os.Exit(0)
	}
	if err := Init(LibraryPath()); err != nil {
		fmt.Fprintf(os.Stderr, "onnx tests: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
