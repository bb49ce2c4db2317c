// go-offsets prints, as JSON, the byte offsets of the Go struct fields apiprof's probes
// read, as compiled by the Go toolchain that runs it. `cargo xtask offsets` runs it with
// every installed toolchain and merges the results into profiler/src/offsets/go_offsets.json.
//
// To track a new field, add it to `fields` and run `cargo xtask offsets`.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"runtime"
)

var fields = []struct {
	name  string
	typ   reflect.Type
	field string
}{
	{"net/http.Request.Method", reflect.TypeOf(http.Request{}), "Method"},
	{"net/http.Request.URL", reflect.TypeOf(http.Request{}), "URL"},
	{"net/http.Request.ProtoMajor", reflect.TypeOf(http.Request{}), "ProtoMajor"},
	{"net/http.Request.ProtoMinor", reflect.TypeOf(http.Request{}), "ProtoMinor"},
	{"net/url.URL.Path", reflect.TypeOf(url.URL{}), "Path"},
	{"net/url.URL.RawQuery", reflect.TypeOf(url.URL{}), "RawQuery"},
}

func main() {
	offsets := map[string]uintptr{}
	for _, f := range fields {
		sf, ok := f.typ.FieldByName(f.field)
		if !ok {
			fmt.Fprintf(os.Stderr, "go-offsets: %s has no field %s in %s\n", f.typ, f.field, runtime.Version())
			os.Exit(1)
		}
		offsets[f.name] = sf.Offset
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"go":      runtime.Version(),
		"offsets": offsets,
	})
}
