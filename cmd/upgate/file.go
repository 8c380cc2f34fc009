package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeFile decodes a YAML configuration file into cfg. Unknown keys are
// rejected. Before the strict decode, a walk over the document checks every
// key and value against cfg's type, so that a mistake is reported with its
// line and full path ("upgate.yaml:7: limits.max_conections: unknown key;
// did you mean max_connections?") instead of a Go type name. The walk also
// records the line of every path in lines.
func decodeFile(name string, data []byte, cfg *fileConfig, lines map[string]int) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &configError{where: name, reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if err := checkNode(name, &doc, reflect.TypeOf(*cfg), "", lines); err != nil {
		return err
	}
	return decodeStrict(name, data, cfg)
}

// decodeStrict decodes data into cfg with yaml.v3's KnownFields: unknown
// keys are errors. It accepts a single document; an empty one leaves cfg
// as it is.
func decodeStrict(name string, data []byte, cfg *fileConfig) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file
		}
		return &configError{where: name, reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &configError{where: name, reason: "holds more than one YAML document"}
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// checkNode checks that n fits the Go type t; path is n's YAML path.
func checkNode(file string, n *yaml.Node, t reflect.Type, path string, lines map[string]int) error {
	bad := func(n *yaml.Node, path, format string, a ...any) error {
		where := file + ":" + strconv.Itoa(n.Line)
		if path != "" {
			where += ": " + path
		}
		return &configError{where: where, reason: fmt.Sprintf(format, a...)}
	}
	switch n.Kind {
	case 0:
		return nil // an empty file
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return checkNode(file, n.Content[0], t, path, lines)
	case yaml.AliasNode:
		return checkNode(file, n.Alias, t, path, lines)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "key:" with no value leaves the default
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			return bad(n, path, "want a duration with a unit such as 500ms, 10s or 2m, got %s", show(n))
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return bad(n, path, "want a duration with a unit such as 500ms, 10s or 2m, got %s", show(n))
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return bad(n, path, "want a mapping of keys (%s), got %s", strings.Join(sortedKeys(yamlFields(t)), ", "), show(n))
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				if err := checkNode(file, v, t, path, lines); err != nil {
					return err
				}
				continue
			}
			p := joinPath(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				reason := "unknown key"
				if guess := closest(k.Value, sortedKeys(fields)); guess != "" {
					reason += "; did you mean " + guess + "?"
				} else {
					reason += "; known keys: " + strings.Join(sortedKeys(fields), ", ")
				}
				return bad(k, p, "%s", reason)
			}
			lines[p] = k.Line
			if err := checkNode(file, v, ft, p, lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return bad(n, path, "want a list, got %s", show(n))
		}
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = e.Line
			if err := checkNode(file, e, t.Elem(), p, lines); err != nil {
				return err
			}
		}
	default:
		v := reflect.New(t)
		if n.Kind != yaml.ScalarNode || n.Decode(v.Interface()) != nil {
			return bad(n, path, "want %s, got %s", describeType(t), show(n))
		}
	}
	return nil
}

// yamlFields maps the YAML keys of struct type t to their field types,
// following yaml.v3's rules: the tag's name, else the lowercased field name;
// inline structs contribute their own keys.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describeType names what a value of t looks like, for error messages.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// show quotes a node's value for an error message.
func show(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// closest returns the known key nearest to key, or "" when none is close:
// at most two edits away, and fewer than a third of key's length.
func closest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(key), k); d < bestDist && 3*d < len(key) {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
