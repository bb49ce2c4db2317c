// go-offsets prints, as JSON, the byte offsets of the Go struct fields apiprof's probes
// read, taken from the DWARF of a Go binary: by default its own, which links net/http's
// HTTP/1 and HTTP/2 servers, so the offsets are those of the toolchain that built it.
// `cargo xtask offsets` builds and runs it with every installed Go toolchain and merges
// the results into profiler/src/offsets/go_offsets.json.
//
// DWARF, unlike reflect, also sees unexported types (net/http.conn).
// To track a new field, add "package.Type.Field" (or "package.Type.(size)") to fields
// and run `cargo xtask offsets`. An entry "A|B" is recorded under A, read from the first
// of A and B this Go version has: types move between Go versions (Go 1.27 moved the
// HTTP/2 server from net/http's bundled copy into net/http/internal/http2). An entry
// starting with "?" is optional: a Go version without it records no offset (null), as
// runtime.g.parentGoid before Go 1.21 or the map layouts of the other implementation.
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
	"runtime.g.m",
	"runtime.m.curg",
	// What the end probes read from the response writers.
	"net/http.Request.Header",
	"net/http.response.status",
	"net/http.response.wroteHeader",
	"net/http.response.written",
	"net/http.response.handlerDone",
	"net/http.conn.hijackedv",
	// The *response being served: an atomic field whose pointer sits at +8 (an
	// atomic.Value, Go 1.19) or +0 (an atomic.Pointer).
	"net/http.conn.curReq.(pointer)",
	// Not read from this table (apiprof finds them in the machine code, which also
	// covers golang.org/x/net's server): the truth its tests check that against.
	"net/http.http2responseWriterState.status|net/http/internal/http2.responseWriterState.status",
	"net/http.http2responseWriterState.wroteHeader|net/http/internal/http2.responseWriterState.wroteHeader",
	"net/http.http2responseWriterState.wroteBytes|net/http/internal/http2.responseWriterState.wroteBytes",
	// Goroutine identity and lineage (parentGoid: Go 1.21+).
	"runtime.g.goid",
	"?runtime.g.parentGoid",
	// The Go map behind http.Header: buckets up to Go 1.23, swiss tables since 1.24.
	"?runtime.hmap.flags",
	"?runtime.hmap.B",
	"?runtime.hmap.buckets",
	"?runtime.hmap.oldbuckets",
	"?internal/runtime/maps.Map.dirPtr",
	"?internal/runtime/maps.Map.dirLen",
	"?internal/runtime/maps.table.groups",
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
		optional := strings.HasPrefix(entry, "?")
		entry = strings.TrimPrefix(entry, "?")
		pointer := strings.HasSuffix(entry, "(pointer)")
		candidates := strings.Split(entry, "|")
		field := candidates[0]
		var st *dwarf.StructType
		var typeName, member string
		for _, candidate := range candidates {
			dot := strings.LastIndex(strings.TrimSuffix(candidate, ".(pointer)"), ".")
			typeName, member = candidate[:dot], strings.TrimSuffix(candidate[dot+1:], ".(pointer)")
			if st = structs[typeName]; st != nil {
				break
			}
		}
		if st == nil && optional {
			continue
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
				if pointer {
					offsets[field] += pointerWithin(m.Type, structs)
				}
			}
		}
		if !found && !optional {
			fail("%s has no field %s in %s", typeName, member, runtime.Version())
		}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"go":      runtime.Version(),
		"offsets": offsets,
	})
}

// pointerWithin is where the pointer an atomic field holds sits within it: the data
// word of a sync/atomic.Value's interface, or a sync/atomic.Pointer's v.
func pointerWithin(t dwarf.Type, structs map[string]*dwarf.StructType) int64 {
	name := t.Common().Name
	switch {
	case name == "sync/atomic.Value":
		return 8
	case strings.HasPrefix(name, "sync/atomic.Pointer["):
		for _, m := range structs[name].Field {
			if m.Name == "v" {
				return m.ByteOffset
			}
		}
	}
	fail("%s is neither sync/atomic.Value nor sync/atomic.Pointer", name)
	return 0
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-offsets: "+format+"\n", args...)
	os.Exit(1)
}
