package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// nodeClient returns node and a copy of scripts/node/ws-client.mjs that
// resolves the ws package from UPGATE_TEST_NODE_MODULES (which ./scripts/test.sh
// sets), else from scripts/node/node_modules. It skips the test when node or
// ws is missing.
func nodeClient(t testing.TB) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipping: node is not installed (the node ws client needs it)")
	}
	modules := os.Getenv("UPGATE_TEST_NODE_MODULES")
	if modules == "" {
		modules = filepath.Join("..", "..", "scripts", "node", "node_modules")
	}
	modules, err = filepath.Abs(modules)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, "ws", "package.json")); err != nil {
		t.Skipf("skipping: node's ws package is not in %s (UPGATE_TEST_NODE_MODULES; ./scripts/test.sh installs it)", modules)
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "scripts", "node", "ws-client.mjs"))
	if err != nil {
		t.Fatalf("scripts/node/ws-client.mjs: %v", err)
	}
	// Node resolves the script's imports from the script's own directory.
	dir := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	script = filepath.Join(dir, "ws-client.mjs")
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return node, script
}

// nodeCommand runs the node ws client with args.
func nodeCommand(ctx context.Context, node, script string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, node, append([]string{script}, args...)...)
}
