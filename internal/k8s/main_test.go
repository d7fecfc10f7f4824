package k8s

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test's watcher stops all of its goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
