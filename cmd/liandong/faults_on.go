//go:build failpoints

package main

import (
	"os"

	"liandong/node/server"
)

// faultsEnv names the JSON file of injected faults a failpoints build of `serve`
// polls (node/server/faults_on.go); the chaos harness sets it.
const faultsEnv = "LIANDONG_FAULTS_FILE"

// faultsFromEnv sets cfg.FaultsFile from the environment.
func faultsFromEnv(cfg *server.Config) { cfg.FaultsFile = os.Getenv(faultsEnv) }
