// go-offsets prints, as JSON, the byte offsets of the Go struct fields apiprof's probes
// read, taken from the DWARF of a Go binary: by default its own, which links net/http's
// HTTP/1 and HTTP/2 servers, so the offsets are those of the toolchain that built it.
// `cargo xtask offsets` builds and runs it with every installed Go toolchain and merges
// the results into profiler/src/offsets/go_offsets.json.
//
// DWARF, unlike reflect, also sees unexported types (net/http.http2MetaHeadersFrame).
// To track a new field, add "package.Type.Field" (or "package.Type.(size)") to fields
// and run `cargo xtask offsets`. An entry "A|B" is recorded under A, read from the first
// of A and B this Go version has: types move between Go versions (Go 1.27 moved the
// HTTP/2 server from net/http's bundled copy into net/http/internal/http2).
package main

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
)

var fields = []string{
	"net/http.Request.Method",
	"net/http.Request.URL",
	"net/http.Request.ProtoMajor",
	"net/http.Request.ProtoMinor",
	"net/http.Request.RemoteAddr",
	"net/url.URL.Path",
	"net/url.URL.RawQuery",
	"net/http.http2MetaHeadersFrame.Fields|net/http/internal/http2.MetaHeadersFrame.Fields",
	// The request the HTTP/2 server creates: Go 1.27's internal server has its own
	// ServerRequest (net/http copies its URL pointer into the *http.Request); earlier
	// servers create the *http.Request itself.
	"net/http/internal/http2.ServerRequest.URL|net/http.Request.URL",
	"vendor/golang.org/x/net/http2/hpack.HeaderField.Name",
	"vendor/golang.org/x/net/http2/hpack.HeaderField.Value",
	"vendor/golang.org/x/net/http2/hpack.HeaderField.(size)",
	"runtime.g.m",
	"runtime.m.curg",
}

// keepServers makes the linker keep net/http's servers (and their types' DWARF).
var keepServers = (&http.Server{}).ServeTLS

func main() {
	_ = keepServers
	path, err := os.Executable()
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if err != nil {
		fail("finding own executable: %v", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		fail("opening %s: %v", path, err)
	}
	data, err := f.DWARF()
	if err != nil {
		fail("%s has no DWARF (build it without -ldflags=-w): %v", path, err)
	}
	structs := map[string]*dwarf.StructType{}
	r := data.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			fail("reading DWARF: %v", err)
		}
		if e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if _, seen := structs[name]; seen || name == "" {
			continue
		}
		t, err := data.Type(e.Offset)
		if err != nil {
			continue
		}
		if st, ok := t.(*dwarf.StructType); ok && !st.Incomplete {
			structs[name] = st
		}
	}
	offsets := map[string]int64{}
	for _, entry := range fields {
		candidates := strings.Split(entry, "|")
		field := candidates[0]
		var st *dwarf.StructType
		var typeName, member string
		for _, candidate := range candidates {
			dot := strings.LastIndex(candidate, ".")
			typeName, member = candidate[:dot], candidate[dot+1:]
			if st = structs[typeName]; st != nil {
				break
			}
		}
		if st == nil {
			fail("no struct for %s in the DWARF of %s (%s)", entry, path, runtime.Version())
		}
		if member == "(size)" {
			offsets[field] = st.ByteSize
			continue
		}
		found := false
		for _, m := range st.Field {
			if m.Name == member {
				offsets[field], found = m.ByteOffset, true
			}
		}
		if !found {
			fail("%s has no field %s in %s", typeName, member, runtime.Version())
		}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"go":      runtime.Version(),
		"offsets": offsets,
	})
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-offsets: "+format+"\n", args...)
	os.Exit(1)
}
