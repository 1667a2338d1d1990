//go:build !failpoints

package main

import "liandong/node/server"

// faultsFromEnv does nothing: only a build with `-tags failpoints` injects
// faults (faults_on.go).
func faultsFromEnv(*server.Config) {}
