package main

import "strings"

// envWarning is an UPGATE_* environment variable that upgate does not know.
type envWarning struct {
	name  string // the variable as set
	guess string // the known variable nearest to it, "" when none is close
}

// unknownEnv returns the UPGATE_* variables of environ ("KEY=value"
// entries, as os.Environ gives them) that name no setting, in the order
// given, each with the closest known name. Empty variables count as unset
// and the reserved prefix UPGATE_TEST_ is left out. The configuration file
// refuses unknown keys; a misspelt variable is only warned about, since
// the environment of a process holds much that is not meant for it.
func unknownEnv(environ []string) []envWarning {
	known := map[string]bool{envConfig: true}
	suffixes := []string{strings.ToLower(strings.TrimPrefix(envConfig, envPrefix))}
	for i := range options {
		known[options[i].env()] = true
		suffixes = append(suffixes, strings.ToLower(strings.TrimPrefix(options[i].env(), envPrefix)))
	}
	var out []envWarning
	seen := map[string]bool{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || strings.HasPrefix(name, envTestPrefix) ||
			known[name] || value == "" || seen[name] {
			continue
		}
		seen[name] = true
		w := envWarning{name: name}
		if g := closest(strings.TrimPrefix(name, envPrefix), suffixes); g != "" {
			w.guess = envPrefix + strings.ToUpper(g)
		}
		out = append(out, w)
	}
	return out
}
