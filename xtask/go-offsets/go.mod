module apiprof.dev/go-offsets

go 1.19
