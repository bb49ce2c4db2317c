#![no_std]
// This file exists to enable the library target, so that `profiler` can name this crate
// as a build-dependency and be rebuilt when it changes (see profiler/build.rs).
